"""The running supervisor's side of usage: scheduled imports, usage reported over the API,
budgets checked at launch and after new usage, and rollovers at period boundaries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from supervisor.agents import accounts
from supervisor.core import events
from supervisor.core.errors import ApiError
from supervisor.storage import queries
from supervisor.storage.models import Runner
from supervisor.storage.writes import StorageError
from supervisor.usage import budgets, periods
from supervisor.usage.budgets import Calendar
from supervisor.usage.importer import ImportReport, run_import
from supervisor.usage.ledger import Attribution, Ledger
from supervisor.usage.pricing import PriceTable
from supervisor.usage.records import UsageRow

if TYPE_CHECKING:
    from supervisor.api.schemas import UsageIn
    from supervisor.core.settings import Settings
    from supervisor.storage.writes import Writes

log = logging.getLogger("stratavore.usage")
UNPRICED = "usage.unpriced_models"  # models already reported as having no price
AFTER_EXIT_DELAY = 2.0  # seconds: agents flush their transcript as they exit


def calendar_of(settings: Any) -> Calendar:
    return Calendar(
        periods.resolve_zone(settings.timezone), periods.WEEKDAYS.index(settings.week_start)
    )


class Runners(Protocol):
    """What the usage service needs of the runners (``RunnerManager`` has it). The usage
    side imports nothing of them: ``supervisor.daemon`` hands its checks and imports over."""

    clock: Callable[[], float]
    writes: Writes

    @property
    def settings(self) -> Settings: ...

    @property
    def accepting(self) -> bool: ...

    def background(self, coro: Any) -> Any: ...

    def active_rows(self, project_id: int | None = None) -> list[Runner]: ...

    def stop(self, runner_id: int, force: bool = False, now: float | None = None) -> Runner: ...

    def project_name(self, project_id: int) -> str: ...

    def learn_sessions(self) -> int: ...

    def note_tokens(self, tokens: dict[int, int]) -> None: ...


class UsageService:
    def __init__(
        self,
        manager: Runners,
        env: Mapping[str, str] | None = None,
        home: Path | None = None,
    ) -> None:
        self.manager = manager
        self.clock: Callable[[], float] = manager.clock
        self.env = env
        self.home = home
        self._import_lock = asyncio.Lock()
        self._prices: tuple[str, PriceTable] | None = None
        # runner id -> its last cumulative (input, output, cache write, cache read, cost)
        self._reported: dict[int, tuple[int, int, int, int, float]] = {}
        self._soon: asyncio.TimerHandle | None = None
        self.imported_at: float | None = None  # when the last import ended (shown in status)

    # --- settings-derived ---------------------------------------------------------------------
    @property
    def calendar(self) -> Calendar:
        return calendar_of(self.manager.settings)

    @property
    def prices(self) -> PriceTable:
        overrides = self.manager.settings.price_overrides
        key = repr(sorted(overrides.items()))
        if self._prices is None or self._prices[0] != key:
            self._prices = (key, PriceTable.bundled(overrides))
        return self._prices[1]

    # --- budgets -----------------------------------------------------------------------------
    def check_launch(self, project: str, profile: str | None, argv: list[str], now: float) -> None:
        agent = budgets.runner_agent(profile, argv)
        env: dict[str, str] = {}
        if profile is not None:
            with contextlib.suppress(ApiError):  # a launch without a profile: the default
                env = queries.profile_by_name(profile).env or {}
        account = accounts.account_key(agent, {**self.base_env, **env})
        budgets.check_launch(project, agent, now, self.calendar, account)

    @property
    def base_env(self) -> Mapping[str, str]:
        """The supervisor's environment, which runs inherit (their default accounts)."""
        return os.environ if self.env is None else self.env

    def account_of(self, row: Runner) -> str:
        """The account a runner uses: its agent's config directory in its environment."""
        agent = budgets.runner_agent(row.profile, row.command)
        return accounts.account_key(agent, {**self.base_env, **(row.env or {})})

    def enforce(self) -> None:
        """Report thresholds crossed; stop the runners of spent ``stop`` budgets. When the DB
        refuses the reports, it says so in the log: the next import or report checks again."""
        now = self.clock()
        try:
            with self._refusals():
                spent = budgets.evaluate(now, self.calendar)
        except StorageError as exc:
            log.warning("budgets: not checked: %s", exc.message)
            return
        for state in spent:
            scope = state.budget.scope
            for row in self.manager.active_rows():
                if self._in_scope(row, scope) and row.state not in ("stopping", "queued"):
                    with contextlib.suppress(ApiError):  # it ended meanwhile
                        self.manager.stop(row.id, now=now)
                        log.info("stopped: runner %s (budget %s spent)", row.id, scope)

    def _in_scope(self, row: Runner, scope: str) -> bool:
        kind, _, name = scope.partition(":")
        if kind == "project":
            return self.manager.project_name(row.project_id) == name
        if kind == "agent":
            return budgets.runner_agent(row.profile, row.command) == name
        if kind == "account":
            return self.account_of(row) == name
        return True

    async def rollover(self) -> int:
        with self._refusals():
            count = budgets.rollover(self.clock(), self.calendar)
            self.enforce()  # a new period may allow what the old one refused, or warn anew
        return count

    @contextlib.contextmanager
    def _refusals(self) -> Iterator[None]:
        """A write the storage refused (locked, full) as its one-sentence StorageError."""
        try:
            yield
        except Exception as exc:
            refused = self.manager.writes.refused(exc)
            if refused is None:
                raise
            raise refused from exc

    # --- import --------------------------------------------------------------------------------
    def import_soon(self, runner_id: int | None = None) -> None:
        """Import shortly (a runner ended: its last responses are in the logs); several
        endings together make one import."""
        if self._soon is None and self.manager.accepting:
            self._soon = asyncio.get_running_loop().call_later(AFTER_EXIT_DELAY, self._fire)

    def _fire(self) -> None:
        self._soon = None
        if self.manager.accepting:
            self.manager.background(self._import_soon())

    async def _import_soon(self) -> None:
        try:
            await self.import_now()
        except StorageError as exc:  # nothing half-written: the next import reads it again
            log.warning("import: not written: %s", exc.message)

    async def import_now(self) -> ImportReport:
        """Read what is new in the agents' logs (in a worker thread), then apply budgets."""
        async with self._import_lock:
            loop = asyncio.get_running_loop()
            prices = self.prices
            # each batch commits with its file marks: none is half-done
            with self._refusals(), self.manager.writes.worker_writing():
                report = await loop.run_in_executor(
                    None, lambda: run_import(prices, self.env, self.home, clock=self.clock)
                )
            self.imported_at = self.clock()
        with self._refusals():
            self._after(report.runner_tokens)
            self.manager.learn_sessions()  # Codex runs learn their session id from its log
            if report.skipped or report.unknown_models:
                self._report_problems(report)
        if report.written:
            log.info("imported: %d usage records in %.2f s", report.written, report.seconds)
        return report

    def _report_problems(self, report: ImportReport) -> None:
        """One event per import that skipped lines; a model without a price is named once,
        ever (it is counted in tokens at $0 meanwhile)."""
        known = set(queries.setting_value(UNPRICED) or ())
        new_models = [m for m in report.unknown_models if m not in known]
        parts = []
        if report.skipped:
            parts.append(f"{report.skipped} malformed lines skipped")
        if new_models:
            parts.append(f"no price for {', '.join(new_models)} (counted at $0)")
        if not parts:
            return
        with self.manager.writes.transaction():
            queries.put_setting(UNPRICED, sorted(known | set(new_models)))
            events.record(
                events.USAGE_IMPORT_PROBLEM,
                "usage import: " + "; ".join(parts),
                ts=self.clock(),
                severity="warning",
                body="\n".join(report.problems),
                data=report.as_json(),
            )

    def _after(self, runner_tokens: dict[int, int]) -> None:
        self.manager.note_tokens(runner_tokens)
        self.enforce()

    # --- usage reported by agents --------------------------------------------------------------
    def record(self, rows: list[UsageRow]) -> int:
        """Write usage reported over the API; how many rows were new or better."""
        ledger = Ledger(self.prices, Attribution.load())
        with self.manager.writes.transaction():
            result = ledger.write(rows)
            if result.span is not None:
                queries.rebuild_buckets(result.span)
            tokens = queries.refresh_runner_tokens(result.runners)
        self._after(tokens)
        return result.written

    def rows_from_api(self, items: list[UsageIn], runner: Runner | None) -> list[UsageRow]:
        now = self.clock()
        agent = budgets.runner_agent(runner.profile, runner.command) if runner else None
        return [
            UsageRow(
                ts=item.ts if item.ts is not None else now,
                agent=item.agent or agent or "unknown",
                model=item.model,
                input_tokens=item.input_tokens,
                output_tokens=item.output_tokens,
                cache_creation_tokens=item.cache_creation_tokens,
                cache_read_tokens=item.cache_read_tokens,
                logged_cost=item.cost_usd,
                key=f"api:{item.key or uuid.uuid4().hex}",
                source="api",
                session_id=item.session_id,
                cwd=runner.cwd if runner else None,
                runner_id=runner.id if runner else None,
                account=self.account_of(runner) if runner else "",
            )
            for item in items
        ]

    def heartbeat_usage(self, runner: Runner, totals: UsageIn) -> int:
        """A heartbeat's cumulative counters, recorded as what grew since the last one.

        A runner reports either per response (``POST /usage``) or cumulative counters in its
        heartbeats, not both: the counters are compared with what the ledger holds from
        reports of this runner.
        """
        now = (
            totals.input_tokens,
            totals.output_tokens,
            totals.cache_creation_tokens,
            totals.cache_read_tokens,
            totals.cost_usd or 0.0,
        )
        before = self._reported.get(runner.id) or queries.reported_totals(runner.id)
        grown = [max(a - b, 0) for a, b in zip(now[:4], before[:4], strict=True)]
        if not any(grown):
            self._reported[runner.id] = now
            return 0
        row = self.rows_from_api([totals], runner)[0]
        row.input_tokens, row.output_tokens, row.cache_creation_tokens = grown[:3]
        row.cache_read_tokens = grown[3]
        row.logged_cost = max(now[4] - before[4], 0) if totals.cost_usd is not None else None
        row.key = f"heartbeat:{runner.id}:{sum(now[:4])}"
        row.source = "heartbeat"
        written = self.record([row])  # refused: the next heartbeat counts from the old base
        self._reported[runner.id] = now
        return written
