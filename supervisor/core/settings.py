"""Supervisor settings: defaults, values saved in the DB, and per-run overrides."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

from supervisor.api.schemas import MAX_CAP  # a project's own cap has the same bound
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.storage import queries
from supervisor.storage.writes import Writes
from supervisor.usage import periods, pricing


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
    usage_import_interval: float = 60.0  # seconds between imports of the agents' logs
    timezone: str = ""  # IANA name for days, weeks and months; "" = the system's
    week_start: str = "monday"
    cost_mode: str = "vendor"  # reports' costs: as the vendor bills (vendor) | as ccusage does
    price_overrides: dict = field(default_factory=dict)  # model -> {price key: USD per token}
    limit_resume_delay: float = 60.0  # resume this long after a provider limit's reset
    limit_retry: float = 3600.0  # a limit without a reset time: try again after this long
    # a plan window's use (the 5-hour, 7-day limits) at these percentages is notified, once
    # per window period: comma-separated
    limit_thresholds: str = "80,95"
    backup_interval: float = 86400.0  # seconds between scheduled backups of the database
    backup_keep: int = 7  # the newest backups kept (of every kind)
    team_push_interval: float = 30.0  # seconds between pushes to the team ledger, when joined
    otel_endpoint: str = ""  # OTLP/HTTP base URL to export metrics to; "" = OTEL_* variables

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the non-None ``overrides`` applied (e.g. command-line flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


# Settings the running supervisor applies at once; the others are read when it starts.
LIVE = frozenset({
    "heartbeat_interval", "heartbeat_ttl", "max_runners_per_project", "max_runners_global",
    "stop_timeout", "start_secs", "max_retries", "backoff_initial", "backoff_max",
    "timezone", "week_start", "cost_mode", "price_overrides", "limit_resume_delay", "limit_retry",
    "backup_keep", "limit_thresholds",
})  # fmt: skip
DAY = 86400
# Inclusive bounds: NaN, infinities and anything outside are refused, whether the value comes
# from the API, the command line or the settings table.
RANGES: dict[str, tuple[float, float]] = {
    "api_port": (0, 65535),  # 0: any free port
    "heartbeat_interval": (0.1, DAY),
    "heartbeat_ttl": (0.1, 7 * DAY),
    "sweep_interval": (0.1, DAY),
    "reap_interval": (0.01, 60),
    "log_pump_interval": (0.01, 60),
    "heartbeat_flush_interval": (0.01, 60),
    "max_runners_per_project": (1, MAX_CAP),
    "max_runners_global": (1, MAX_CAP),
    "stop_timeout": (0.1, DAY),
    "start_secs": (0, 3600),  # 0: running as soon as spawned
    "max_retries": (0, 1000),
    "backoff_initial": (0.01, DAY),
    "backoff_max": (0.01, DAY),
    "log_max_bytes": (1024, 2**40),
    "log_backups": (1, 1000),
    "usage_import_interval": (1, DAY),
    "limit_resume_delay": (0, DAY),
    "limit_retry": (60, 7 * DAY),
    "backup_interval": (60, 365 * DAY),
    "backup_keep": (1, 1000),
    "team_push_interval": (1, DAY),
}


def check_setting(key: str, value: Any) -> int | float:
    """``value`` as the type of setting ``key``, or ApiError saying what is wrong."""
    types = {f.name: f.type for f in fields(Settings)}
    if key not in types:
        raise ApiError(
            ErrorCode.NOT_FOUND,
            f"There is no setting '{key}'; `stratavore settings` lists them.",
        )
    kind = {"int": int, "float": float, "str": str, "dict": dict}[str(types[key])]
    if kind is str or kind is dict:
        return _check_text(key, value, kind)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (kind is int and not float(value).is_integer())
    ):
        raise ApiError(ErrorCode.INVALID, f"Setting {key} takes {kind.__name__} values.")
    low, high = RANGES[key]
    if not low <= value <= high:  # also false for NaN
        raise ApiError(ErrorCode.INVALID, f"Setting {key} must be from {low:g} to {high:g}.")
    return kind(value)


@dataclass(frozen=True)
class Saved:
    """The settings table, checked: the usable values, and why each other one is not."""

    values: dict[str, Any]
    problems: dict[str, str]  # key -> one sentence


def read_saved() -> Saved:
    """The saved values, each checked as if it were set now (a hand-edited or damaged table
    must not start a supervisor that queues every launch for ever); unknown keys ignored."""
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for key, text in queries.setting_texts():
        if key not in known:
            continue
        shown = text if len(text) <= 40 else text[:37] + "..."
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            problems[key] = f"The saved value {shown!r} is not JSON."
            continue
        try:
            values[key] = check_setting(key, value)
        except ApiError as exc:
            problems[key] = f"The saved value {shown} is refused: {exc.message}"
    return Saved(values, problems)


def saved_settings() -> dict[str, Any]:
    """The usable values saved in the settings table."""
    return read_saved().values


def load_settings() -> Settings:
    """Defaults updated with the usable saved values."""
    return Settings(**saved_settings())


def save_setting(key: str, value: Any) -> None:
    if key not in {f.name for f in fields(Settings)}:
        raise KeyError(key)
    queries.put_setting(key, value)


class LiveSettings:
    """The running supervisor's settings, one object its parts share: a setting that applies
    at once (:data:`LIVE`) is seen by every part from the moment it is saved."""

    def __init__(self, settings: Settings) -> None:
        self.current = settings
        self.zone = periods.resolve_zone(settings.timezone)  # local times in limit messages

    def save(self, key: str, value: Any, writes: Writes) -> bool:
        """Save a setting (committed before it is believed); whether it applies now rather
        than at the next start."""
        value = check_setting(key, value)
        with writes.transaction():
            save_setting(key, value)
        if key not in LIVE:
            return False
        self.current = self.current.with_overrides(**{key: value})
        self.zone = periods.resolve_zone(self.current.timezone)
        return True


def _check_text(key: str, value: Any, kind: type[Any]) -> Any:
    """The string and table settings, each checked by the code that uses it."""
    if not isinstance(value, kind):
        raise ApiError(ErrorCode.INVALID, f"Setting {key} takes a {kind.__name__} value.")
    if key == "timezone" and value:
        periods.resolve_zone(value)
    choices = {"week_start": periods.WEEKDAYS, "cost_mode": pricing.COST_MODES}.get(key)
    if choices is not None and value not in choices:
        raise ApiError(ErrorCode.INVALID, f"Setting {key} is one of {', '.join(choices)}.")
    if key == "otel_endpoint" and value:
        try:
            parts = urlsplit(value)
            url = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 address)
            url = False
        if not url:
            raise ApiError(
                ErrorCode.INVALID,
                "Setting otel_endpoint is an http:// or https:// URL, e.g. "
                "http://collector:4318 (or empty).",
            )
    if key == "limit_thresholds":
        thresholds_of(value)
    if key == "price_overrides":
        try:
            pricing.PriceTable.bundled(value)
        except ValueError as exc:
            raise ApiError(ErrorCode.INVALID, str(exc)) from None
    return value


def thresholds_of(text: str) -> list[float]:
    """The percentages of ``limit_thresholds`` ("80,95"), sorted; one sentence when one is
    not a number from 1 to 100."""
    found = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            value = float(part.rstrip("%").strip())
        except ValueError:
            value = math.nan
        if not 1 <= value <= 100:  # also false for NaN
            raise ApiError(
                ErrorCode.INVALID,
                f"Setting limit_thresholds takes percentages from 1 to 100 separated by "
                f"commas, like 80,95; {part!r} is not one.",
            )
        found.append(value)
    return sorted(set(found))
