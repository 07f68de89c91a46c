"""The names of the former ``store`` module, for callers not moved yet (transitional).

``store.py`` was split into :mod:`supervisor.storage.models` (the tables and ``DB``),
:mod:`supervisor.storage.migrations` and :mod:`supervisor.storage.db` (open, close, the
built-in profiles). New code imports those; this module goes once no caller uses it.
"""

from supervisor.storage.db import (
    BUILTIN_PROFILES,
    SchemaTooNew,
    close_db,
    init_db,
    sync_builtin_profiles,
)
from supervisor.storage.migrations import MIGRATIONS, SCHEMA_VERSION
from supervisor.storage.models import (
    DB,
    MODELS,
    BaseModel,
    Budget,
    BudgetMark,
    Channel,
    Delivery,
    DeliveryBatch,
    Event,
    JSONField,
    Profile,
    Project,
    Runner,
    Setting,
    Usage,
    UsageBucket,
    UsageFile,
    UsageSession,
)

__all__ = [
    "BUILTIN_PROFILES", "DB", "MIGRATIONS", "MODELS", "SCHEMA_VERSION", "BaseModel", "Budget",
    "BudgetMark", "Channel", "Delivery", "DeliveryBatch", "Event", "JSONField", "Profile",
    "Project", "Runner", "SchemaTooNew", "Setting", "Usage", "UsageBucket", "UsageFile",
    "UsageSession", "close_db", "init_db", "sync_builtin_profiles",
]  # fmt: skip
