"""Bodies of the team routes (docs/team.md): what this supervisor knows of its team."""

from __future__ import annotations

from msgspec import Struct

from supervisor.api.schemas.base import Timestamp
from supervisor.api.schemas.usage import BudgetSpend


class TeamPush(Struct, kw_only=True):
    at: Timestamp
    rows: int  # usage rows it sent


class TeamProblem(Struct, kw_only=True):
    at: Timestamp
    message: str  # one sentence: the team database's refusal or why it cannot be reached
    since: Timestamp | None = None  # the first failure since the last push that succeeded


class TeamStatus(Struct, kw_only=True):
    joined: bool
    push_interval: float  # seconds between this supervisor's pushes (team_push_interval)
    team: str | None = None  # user@host:port/db, never a password
    member: str | None = None
    machine_id: str | None = None  # the key of this data dir's rows in the team ledger
    joined_at: Timestamp | None = None
    pending: int = 0  # changes not confirmed by the team database yet
    last_push: TeamPush | None = None
    last_error: TeamProblem | None = None  # of the last push, until one succeeds


class MemberSpend(Struct, kw_only=True):
    member: str
    used_tokens: int
    used_usd: float


# scope: team, team:project:NAME or member:NAME; period: daily, weekly or monthly, in the
# team's zone. (No docstring: it would become this schema's description in the OpenAPI document.)
class TeamBudget(BudgetSpend, kw_only=True):
    period_start: Timestamp
    resets_at: Timestamp
    zone: str
    by_member: list[MemberSpend]  # most spent first


class TeamBudgets(Struct, kw_only=True):
    fetched_at: Timestamp | None  # when the team database gave these totals (null: never)
    stale: str | None  # why they may be old: the team database's error, else null
    budgets: list[TeamBudget]
