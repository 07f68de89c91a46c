"""The settings table."""

from __future__ import annotations

from supervisor.storage.models import DB


def setting_texts() -> list[tuple[str, str]]:
    """Every saved setting as (key, its JSON text), not decoded: a value that is not JSON is
    then reported by its name instead of failing the whole read."""
    rows = DB.execute_sql('SELECT "key", "value" FROM "setting" ORDER BY "key"').fetchall()
    return [(key, text if isinstance(text, str) else str(text)) for key, text in rows]
