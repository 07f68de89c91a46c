"""The routes of token usage (reports, import, what agents send) and of budgets."""

from __future__ import annotations

import hmac

import msgspec
from aiohttp import web

from supervisor.api import schemas as sc
from supervisor.api.routes import ADMIN, RUNNER_OR_ADMIN, Route
from supervisor.api.wire import bearer, decode, flag_param, json_response
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.runners.manager import RunnerManager
from supervisor.storage import queries
from supervisor.usage import budgets, periods, reports
from supervisor.usage.service import UsageService


class Usage:
    """Serves the usage and budgets routes; the usage service keeps the ledger and enforces
    the budgets."""

    def __init__(self, manager: RunnerManager, usage: UsageService, admin_token: str) -> None:
        self.manager = manager
        self.usage = usage
        self.admin_token = admin_token

    async def post_usage(self, request: web.Request) -> web.Response:
        token = bearer(request)
        body = await decode(request, sc.UsageReport)
        runner = None
        if hmac.compare_digest(token.encode(), self.admin_token.encode()):
            if body.runner_id is not None:
                runner = self.manager.row(body.runner_id)
        elif body.runner_id is not None:
            runner = self.manager.runner_with_token(body.runner_id, token)
        else:
            raise ApiError(
                ErrorCode.UNAUTHORIZED,
                "Wrong bearer token; send the admin token, or a runner's own with its runner_id.",
            )
        written = self.usage.record(self.usage.rows_from_api(body.records, runner))
        return json_response(sc.UsageAck(written=written))

    async def import_usage(self, request: web.Request) -> web.Response:
        report = await self.usage.import_now()
        return json_response(report.as_json())

    async def usage_report(self, request: web.Request) -> web.Response:
        kind = request.match_info["report"]
        q = request.query
        allowed = {"since", "until", "project", "agent", "account", "timezone", "by_project",
                   "by_account", "mode"}  # fmt: skip
        unknown = sorted(set(q) - allowed)
        if unknown:
            raise ApiError(
                ErrorCode.BAD_REQUEST,
                f"Unknown query parameter {unknown[0]}; use {', '.join(sorted(allowed))}.",
            )
        settings = self.manager.settings
        query = reports.Query(
            zone=periods.resolve_zone(q.get("timezone") or settings.timezone),
            since=reports.parse_day(q["since"], "since") if "since" in q else None,
            until=reports.parse_day(q["until"], "until") if "until" in q else None,
            project=q.get("project"),
            agent=q.get("agent"),
            week_start=periods.WEEKDAYS.index(settings.week_start),
            mode=reports.parse_mode(q.get("mode") or settings.cost_mode, "mode"),
            account=q.get("account"),
        )
        by_project = flag_param(request, "by_project")
        by_account = flag_param(request, "by_account")
        if by_project and by_account:
            raise ApiError(ErrorCode.INVALID, "Give by_project or by_account, not both.")
        by = "project" if by_project else "account" if by_account else None
        return json_response(reports.report(kind, query, self.manager.clock(), by))

    async def list_budgets(self, request: web.Request) -> web.Response:
        now, cal = self.manager.clock(), self.usage.calendar
        return json_response(
            [budgets.status(b, now, cal).as_json() for b in queries.all_budgets()]
        )

    async def put_budget(self, request: web.Request) -> web.Response:
        body = await decode(request, sc.BudgetSet)
        now = self.manager.clock()
        budget = budgets.set_budget(
            body.scope, body.period, body.limit_tokens, body.limit_usd, body.warn, body.action, now,
            self.usage.base_env,
        )
        self.usage.enforce()
        return json_response(budgets.status(budget, now, self.usage.calendar).as_json())

    async def delete_budget(self, request: web.Request) -> web.Response:
        budgets.remove_budget(
            request.match_info["scope"], request.match_info["period"], self.usage.base_env
        )
        return web.Response(status=204)


class RunnerClaim(msgspec.Struct):
    """The one field of a usage report that says which runner it speaks for (the rest of
    the body is skipped: the handler decodes it whole)."""

    runner_id: int | None = None


async def body_runner(request: web.Request) -> int | None:
    """The runner a usage report speaks for: its ``runner_id`` (None: none named)."""
    return (await decode(request, RunnerClaim)).runner_id


ROUTES = (
    Route("post", "/api/v1/usage", Usage.post_usage,
          "Record token usage (admin token, or a runner's token with runner_id)",
          RUNNER_OR_ADMIN, body=sc.UsageReport, response=sc.UsageAck, runner_id=body_runner),
    Route("post", "/api/v1/usage/import", Usage.import_usage,
          "Import new usage from the agents' logs now", ADMIN, response=sc.UsageImport),
    Route("get", "/api/v1/usage/{report}", Usage.usage_report,
          "Usage report: daily|weekly|monthly|session|blocks (?since, ?until as YYYY-MM-DD, "
          "?project, ?agent, ?account (a profile's name or an account's directory), ?timezone, "
          "?by_project=1 or ?by_account=1 for a row per project or account, ?mode=vendor|ccusage "
          "for the costs; default: the cost_mode setting)", ADMIN),
    Route("get", "/api/v1/budgets", Usage.list_budgets, "Budgets with their current periods",
          ADMIN, response=list[sc.BudgetStatus]),
    Route("put", "/api/v1/budgets", Usage.put_budget,
          "Create or change the budget of a scope and period", ADMIN, body=sc.BudgetSet,
          response=sc.BudgetStatus),
    Route("delete", "/api/v1/budgets/{scope}/{period}", Usage.delete_budget, "Remove a budget",
          ADMIN),
)  # fmt: skip
