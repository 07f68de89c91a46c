"""Setting values are checked by type and range before anything is saved."""

from __future__ import annotations

import pytest

from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.settings import LIVE, RANGES, Settings, check_setting


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [("start_secs", 0, 0.0), ("max_runners_global", 40.0, 40), ("api_port", 0, 0),
     ("max_retries", 0, 0), ("stop_timeout", 2, 2.0)],
)
def test_accepted_values_are_stored_as_the_setting_type(key, value, stored):
    result = check_setting(key, value)
    assert result == stored and type(result) is type(getattr(Settings(), key))


@pytest.mark.parametrize(
    ("key", "value", "code", "message"),
    [
        ("colour", 1, ErrorCode.NOT_FOUND,
         "There is no setting 'colour'; `stratavore settings` lists them."),
        ("max_runners_global", 2.5, ErrorCode.INVALID,
         "Setting max_runners_global takes int values."),
        ("stop_timeout", True, ErrorCode.INVALID, "Setting stop_timeout takes float values."),
        ("stop_timeout", 0, ErrorCode.INVALID,
         "Setting stop_timeout must be from 0.1 to 86400."),
        ("stop_timeout", float("nan"), ErrorCode.INVALID,
         "Setting stop_timeout must be from 0.1 to 86400."),
        ("heartbeat_ttl", float("inf"), ErrorCode.INVALID,
         "Setting heartbeat_ttl must be from 0.1 to 604800."),
        ("max_runners_global", -5, ErrorCode.INVALID,
         "Setting max_runners_global must be from 1 to 10000."),
        ("start_secs", -1, ErrorCode.INVALID, "Setting start_secs must be from 0 to 3600."),
    ],
)  # fmt: skip
def test_refused_values_say_what_is_wrong(key, value, code, message):
    with pytest.raises(ApiError) as info:
        check_setting(key, value)
    assert (info.value.code, info.value.message) == (code, message)


def test_live_settings_exist():
    assert set(Settings.__dataclass_fields__) >= LIVE


def test_every_number_setting_has_its_bounds():
    numbers = {
        name for name, f in Settings.__dataclass_fields__.items() if f.type in ("int", "float")
    }
    assert numbers == set(RANGES)
