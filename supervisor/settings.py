"""Supervisor settings: defaults, values saved in the DB, and per-run overrides."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from supervisor.errors import ApiError, ErrorCode
from supervisor.store import Setting
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

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the non-None ``overrides`` applied (e.g. command-line flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


# Settings the running supervisor applies at once; the others are read when it starts.
LIVE = frozenset({
    "heartbeat_interval", "heartbeat_ttl", "max_runners_per_project", "max_runners_global",
    "stop_timeout", "start_secs", "max_retries", "backoff_initial", "backoff_max",
    "timezone", "week_start", "cost_mode", "price_overrides", "limit_resume_delay", "limit_retry",
})  # fmt: skip
RANGES: dict[str, tuple[float, float]] = {
    "api_port": (0, 65535),
    "max_retries": (0, 1000),
    "start_secs": (0, 3600),  # 0: running as soon as spawned
    "limit_resume_delay": (0, 86400),
    "limit_retry": (60, 7 * 86400),
}
DEFAULT_RANGE = (0.001, 10**9)  # everything else: positive


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
    low, high = RANGES.get(key, DEFAULT_RANGE)
    if not low <= value <= high:
        raise ApiError(ErrorCode.INVALID, f"Setting {key} must be from {low:g} to {high:g}.")
    return kind(value)


def saved_settings() -> dict[str, Any]:
    """The values saved in the settings table (unknown keys ignored)."""
    known = {f.name for f in fields(Settings)}
    return {row.key: row.value for row in Setting.select() if row.key in known}


def load_settings() -> Settings:
    """Defaults updated with the saved values."""
    return Settings(**saved_settings())


def save_setting(key: str, value: Any) -> None:
    if key not in {f.name for f in fields(Settings)}:
        raise KeyError(key)
    Setting.replace(key=key, value=value).execute()


def _check_text(key: str, value: Any, kind: type) -> Any:
    """The string and table settings, each checked by the code that uses it."""
    if not isinstance(value, kind):
        raise ApiError(ErrorCode.INVALID, f"Setting {key} takes a {kind.__name__} value.")
    if key == "timezone" and value:
        periods.resolve_zone(value)
    choices = {"week_start": periods.WEEKDAYS, "cost_mode": pricing.COST_MODES}.get(key)
    if choices is not None and value not in choices:
        raise ApiError(ErrorCode.INVALID, f"Setting {key} is one of {', '.join(choices)}.")
    if key == "price_overrides":
        try:
            pricing.PriceTable.bundled(value)
        except ValueError as exc:
            raise ApiError(ErrorCode.INVALID, str(exc)) from None
    return value
