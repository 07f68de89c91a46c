"""Supervisor settings: defaults, values saved in the DB, and per-run overrides."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from supervisor.store import Setting


@dataclass(frozen=True)
class Settings:
    api_port: int = 7420  # 0: any free port
    heartbeat_interval: float = 10.0  # what stratavore-agent is told to use
    heartbeat_ttl: float = 30.0  # silent longer than this: flagged unresponsive
    sweep_interval: float = 30.0
    reap_interval: float = 1.0  # fallback poll for exits where SIGCHLD can't be watched
    log_pump_interval: float = 1.0
    heartbeat_flush_interval: float = 1.0
    max_runners_per_project: int = 5
    max_runners_global: int = 20
    stop_timeout: float = 10.0
    start_secs: float = 1.0
    max_retries: int = 3
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 3

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the non-None ``overrides`` applied (e.g. command-line flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_settings() -> Settings:
    """Defaults updated with the values saved in the settings table (unknown keys ignored)."""
    known = {f.name for f in fields(Settings)}
    saved = {row.key: row.value for row in Setting.select() if row.key in known}
    return Settings(**saved)


def save_setting(key: str, value: Any) -> None:
    if key not in {f.name for f in fields(Settings)}:
        raise KeyError(key)
    Setting.replace(key=key, value=value).execute()
