"""Request and response bodies of the HTTP API, and the OpenAPI document built from them.

msgspec validates a body while decoding it (one pass, C speed: heartbeats arrive by the
thousand) and emits JSON Schema for the same structs, so the OpenAPI document cannot drift
from what the server accepts. All fields are snake_case; timestamps are ISO 8601 UTC strings.

The bodies live by resource (``base`` holds the field types and bounds they share); this
package names them all, so callers outside the API (the runners, the CLI, usage, notify)
import ``supervisor.api.schemas.Launch`` without knowing which resource declares it.
"""

from supervisor.api.schemas.base import (
    MAX_CAP,
    MAX_EPOCH,
    MAX_INT,
    MAX_PID,
    MAX_TOKENS,
    MAX_USD,
    NAME_PATTERN,
    Argument,
    Cap,
    Environment,
    Error,
    ExitCode,
    Id,
    Input,
    Mode,
    Name,
    Prompt,
    RestartPolicyName,
    SessionId,
    Template,
    Timestamp,
    iso,
)
from supervisor.api.schemas.hooks import Heartbeat, HeartbeatAck, HookAck, HookIn
from supervisor.api.schemas.limits import PlanLimitOut, StatusLineAck, StatusLineIn
from supervisor.api.schemas.notify import ChannelOut, ChannelSet, ChannelTest, DeadLetter
from supervisor.api.schemas.openapi import ERROR_STATUSES, openapi_document
from supervisor.api.schemas.projects import (
    Profile,
    ProfileCreate,
    Project,
    ProjectCreate,
    ProjectUpdate,
    SettingUpdate,
    SettingValue,
)
from supervisor.api.schemas.runners import (
    Launch,
    Logs,
    Register,
    Registered,
    Resume,
    Runner,
    Session,
    Stop,
    StopMany,
)
from supervisor.api.schemas.system import Event, Health, Status
from supervisor.api.schemas.team import (
    MemberSpend,
    TeamBudget,
    TeamBudgets,
    TeamProblem,
    TeamPush,
    TeamStatus,
)
from supervisor.api.schemas.usage import (
    BudgetSet,
    BudgetStatus,
    Tokens,
    UsageAck,
    UsageImport,
    UsageIn,
    UsageReport,
)
from supervisor.api.schemas.worktrees import Changes, Discarded, FileChange, Merged

__all__ = [
    "ERROR_STATUSES",
    "MAX_CAP",
    "MAX_EPOCH",
    "MAX_INT",
    "MAX_PID",
    "MAX_TOKENS",
    "MAX_USD",
    "NAME_PATTERN",
    "Argument",
    "BudgetSet",
    "BudgetStatus",
    "Cap",
    "Changes",
    "ChannelOut",
    "ChannelSet",
    "ChannelTest",
    "DeadLetter",
    "Discarded",
    "Environment",
    "Error",
    "Event",
    "ExitCode",
    "FileChange",
    "Health",
    "Heartbeat",
    "HeartbeatAck",
    "HookAck",
    "HookIn",
    "Id",
    "Input",
    "Launch",
    "Logs",
    "MemberSpend",
    "Merged",
    "Mode",
    "Name",
    "PlanLimitOut",
    "Profile",
    "ProfileCreate",
    "Project",
    "ProjectCreate",
    "ProjectUpdate",
    "Prompt",
    "Register",
    "Registered",
    "RestartPolicyName",
    "Resume",
    "Runner",
    "Session",
    "SessionId",
    "SettingUpdate",
    "SettingValue",
    "Status",
    "StatusLineAck",
    "StatusLineIn",
    "Stop",
    "StopMany",
    "TeamBudget",
    "TeamBudgets",
    "TeamProblem",
    "TeamPush",
    "TeamStatus",
    "Template",
    "Timestamp",
    "Tokens",
    "UsageAck",
    "UsageImport",
    "UsageIn",
    "UsageReport",
    "iso",
    "openapi_document",
]
