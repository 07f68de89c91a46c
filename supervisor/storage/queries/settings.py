"""The settings table."""

from __future__ import annotations

from typing import Any

from supervisor.storage.models import DB, Setting


def setting_texts() -> list[tuple[str, str]]:
    """Every saved setting as (key, its JSON text), not decoded: a value that is not JSON is
    then reported by its name instead of failing the whole read."""
    rows = DB.execute_sql('SELECT "key", "value" FROM "setting" ORDER BY "key"').fetchall()
    return [(key, text if isinstance(text, str) else str(text)) for key, text in rows]


def setting_value(key: str) -> Any:
    """The saved value of ``key`` (decoded), or None when there is none."""
    row = Setting.get_or_none(Setting.key == key)
    return None if row is None else row.value


def put_setting(key: str, value: Any) -> None:
    """Save ``value`` under ``key``, replacing what was there."""
    Setting.replace(key=key, value=value).execute()


def delete_setting(key: str) -> None:
    Setting.delete().where(Setting.key == key).execute()
