"""The routes of the team ledger (docs/team.md): this supervisor's membership and push state,
and the team budgets as it enforces them. Both answer from this machine (its memory and its
store), never from the team database: a slow or unreachable server never holds up the API,
and ``stratavore team status`` / ``team budgets`` are there to ask the server itself."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from supervisor.api import schemas as sc
from supervisor.api.routes import ADMIN, Route
from supervisor.api.wire import json_response
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.runners.manager import RunnerManager
from supervisor.team import local, membership, reports
from supervisor.team.server import TeamError
from supervisor.team.service import TeamService
from supervisor.usage import reports as usage_reports


class Team:
    """Serves the team routes from the team service of the running supervisor."""

    def __init__(self, manager: RunnerManager, team: TeamService) -> None:
        self.manager = manager
        self.team = team

    async def status(self, request: web.Request) -> web.Response:
        interval = self.manager.settings.team_push_interval
        # the outbox's rows are counted: after a long outage, a million of them (off the loop)
        found = await asyncio.get_running_loop().run_in_executor(None, _local_status)
        if found is None:
            return json_response(sc.TeamStatus(joined=False, push_interval=interval))
        push, error = found["last_push"], found["last_error"]
        return json_response(
            sc.TeamStatus(
                joined=True,
                push_interval=interval,
                team=found["team"],
                member=found["member"],
                machine_id=found["machine_id"],
                joined_at=sc.iso(found["joined_at"]),
                pending=found["pending"],
                last_push=sc.TeamPush(at=sc.iso(push["at"]), rows=push["rows"]) if push else None,
                last_error=sc.TeamProblem(
                    at=sc.iso(error["at"]),
                    message=error["message"],
                    since=sc.iso(error.get("since", error["at"])),
                )
                if error
                else None,
            )
        )

    async def budgets(self, request: web.Request) -> web.Response:
        _require_team()
        snapshot = self.team.budgets.known()
        if snapshot is None:  # joined, and no answer from the team database yet
            return json_response(sc.TeamBudgets(fetched_at=None, stale=None, budgets=[]))
        return json_response(
            sc.TeamBudgets(
                fetched_at=sc.iso(snapshot.fetched_at) if snapshot.fetched_at else None,
                stale=snapshot.stale,
                budgets=[
                    sc.TeamBudget(
                        scope=b.scope,
                        shown_scope=b.scope,  # team scopes read as they are (team, member:NAME)
                        period=b.period,
                        limit_tokens=b.limit_tokens,
                        limit_usd=b.limit_usd,
                        warn=b.warn,
                        action=b.action,
                        used_tokens=b.tokens,
                        used_usd=round(b.usd, 6),
                        percent=round(b.percent, 2),
                        period_start=sc.iso(b.start),
                        resets_at=sc.iso(b.resets_at),
                        zone=b.zone,
                        by_member=[
                            sc.MemberSpend(member=m, used_tokens=t, used_usd=round(u, 6))
                            for m, t, u in b.by_member
                        ],
                    )
                    for b in snapshot.budgets
                ],
            )
        )


    async def usage(self, request: web.Request) -> web.Response:
        """The team's usage per day (week, month), summed by the team database in its zone,
        optionally a row per member, project, model or agent: asked in a worker thread,
        so an unreachable server is a 503 after its connect timeout, never a stalled loop."""
        kind = request.match_info["report"]
        q = request.query
        allowed = {"since", "until", "by", "mode"}
        unknown = sorted(set(q) - allowed)
        if unknown:
            raise ApiError(
                ErrorCode.BAD_REQUEST,
                f"Unknown query parameter {unknown[0]}; use {', '.join(sorted(allowed))}.",
            )
        if kind not in reports.UNITS:
            raise ApiError(
                ErrorCode.NOT_FOUND,
                f"Team report '{kind}' does not exist; use {', '.join(reports.UNITS)}.",
            )
        by = q.get("by") or None
        if by is not None and by not in reports.GROUPS:
            raise ApiError(
                ErrorCode.INVALID, f"by takes one of {', '.join(reports.GROUPS)}, not '{by}'."
            )
        since = usage_reports.parse_day(q["since"], "since") if "since" in q else None
        until = usage_reports.parse_day(q["until"], "until") if "until" in q else None
        mode = usage_reports.parse_mode(q.get("mode") or self.manager.settings.cost_mode, "mode")
        _require_team()

        def ask() -> dict[str, Any]:
            with membership.connected() as db:
                return reports.report(db, kind, by, since, until, mode=mode)

        try:
            found = await asyncio.get_running_loop().run_in_executor(None, ask)
        except TeamError as exc:
            raise ApiError(ErrorCode.UNAVAILABLE, str(exc)) from None
        return json_response(found)


def _require_team() -> None:
    """A 404 with the command that joins one, when this data dir is in no team."""
    if local.membership() is None:
        raise ApiError(
            ErrorCode.NOT_FOUND,
            "This data dir is in no team; `stratavore team join postgresql://HOST/DB "
            "--as NAME` joins one.",
        )


def _local_status() -> dict[str, Any] | None:
    """This data dir's membership and push state (None: in no team); asks no server."""
    if local.membership() is None:
        return None
    return membership.status(check_server=False)


ROUTES = (
    Route("get", "/api/v1/team", Team.status,
          "This supervisor's team: membership, changes not pushed yet, the last push and error",
          ADMIN, response=sc.TeamStatus),
    Route("get", "/api/v1/team/budgets", Team.budgets,
          "The team budgets as this supervisor enforces them: the team database's last answer",
          ADMIN, response=sc.TeamBudgets),
    Route("get", "/api/v1/team/usage/{report}", Team.usage,
          "The team's usage: daily|weekly|monthly, summed by the team database in the team's "
          "zone (?since, ?until as YYYY-MM-DD, ?by=member|project|model|agent for a row per "
          "group, ?mode=vendor|ccusage; default: the cost_mode setting)", ADMIN),
)  # fmt: skip
