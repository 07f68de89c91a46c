"""The supervisor as one object on one asyncio loop: store, runners, scheduler and API.

``stratavore daemon`` runs it on a plain asyncio loop; the tray app runs the very same
:class:`Supervisor` on its qasync loop (``await supervisor.start()`` there too). Periodic work
is APScheduler jobs (all ``async def``, so under qasync they run on the GUI thread and hand
blocking work to executors), built from trigger objects rather than strings so frozen builds
need no entry-point lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from aiohttp import web
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from supervisor import __version__
from supervisor.agents import commands
from supervisor.api.app import Api
from supervisor.api.metrics import Metrics
from supervisor.api.server import LoopbackSite
from supervisor.core import events, paths, runtime
from supervisor.core.datalock import DataDirLock
from supervisor.core.errors import KnownError
from supervisor.core.logfile import setup_logging
from supervisor.core.ownprocess import raise_fd_limit, release_free_memory, restrict_umask
from supervisor.core.settings import Settings, read_saved
from supervisor.notify.outbox import Dispatcher, ensure_desktop_channel
from supervisor.runners.manager import RunnerManager
from supervisor.runners.process import ProcessOps
from supervisor.storage import backups
from supervisor.storage.db import SchemaTooNew, close_db, init_db
from supervisor.storage.models import DB
from supervisor.storage.writes import StorageError, Writes
from supervisor.team import otel, wiring
from supervisor.team.service import TeamService
from supervisor.usage import budgets
from supervisor.usage.service import UsageService

log = logging.getLogger("stratavore.daemon")
ROLLOVER_GRACE = 1.0  # seconds after a period's end: its last bucket is complete


class PortInUse(KnownError):
    """The API's port is taken by another program."""


class Supervisor:
    """Everything the headless supervisor is, started and stopped as one."""

    def __init__(
        self,
        root: Path | None = None,
        ops: ProcessOps | None = None,
        clock: Any = time.time,
        desktop: bool = False,
        **overrides: Any,
    ) -> None:
        self.root = root or paths.data_dir()
        self.desktop = desktop  # embedded in the tray app, which shows desktop deliveries
        self.ops = ops
        self.clock = clock
        self.overrides = overrides
        self.lock = DataDirLock(self.root)
        self.scheduler: AsyncIOScheduler | None = None
        self.runner: web.AppRunner | None = None
        self.manager: RunnerManager | None = None
        self.usage: UsageService | None = None
        self.dispatcher: Dispatcher | None = None
        self.team: TeamService | None = None
        self.otel: otel.OtelExport | None = None
        self.settings: Settings | None = None
        self.writes = Writes(self.root, clock)
        self.url = ""
        self.port = 0
        self.stopping = False  # a backup under way gives up at its next step

    async def start(self) -> None:
        """Lock the data dir, open the DB, take over earlier runners, serve the API."""
        try:
            self.lock.acquire()
            await self._start()
        except BaseException as exc:
            refused = cannot_start(self.writes, exc)
            await self.stop()
            if refused is not None:
                raise refused from None
            raise

    async def _start(self) -> None:
        started_at = self.clock()
        raise_fd_limit()
        await self._open_storage()
        # asks the user's login shell for its PATH: off the loop (in the tray, the GUI thread)
        path = await asyncio.get_running_loop().run_in_executor(None, commands.search_path)
        manager, usage, dispatcher, team = self._assemble(path)
        token = runtime.admin_token(self.root, create=True)
        assert token is not None
        metrics = Metrics(started_at)
        api = Api(manager, usage, dispatcher, token, started_at, self.root, metrics, team)
        await self._serve(api)
        manager.set_api_url(self.url)
        self.scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        )
        self._plan_resumes(manager, self.scheduler)
        manager.reconcile()  # paused runners get their resume jobs here
        dispatcher.start()  # what was not delivered before a crash goes out now
        self._start_scheduler(manager, usage)
        assert self.settings is not None
        self.otel = await wiring.start_otel(self.settings.otel_endpoint or None, started_at)
        self._announce()
        release_free_memory()

    async def _open_storage(self) -> None:
        """Tighten a loose data dir, refuse a damaged database, open (and migrate) it, and
        read the saved settings under this run's overrides."""
        if paths.tighten(self.root):
            log.warning(
                "tightened: the data dir %s could be read by other users; "
                "made its folders 0700 and its files 0600",
                self.root,
            )
        db_file = paths.db_path(self.root)
        # reads every page (seconds for a GiB, docs/benchmarks.md): off the loop, which in
        # the tray app is the GUI thread
        began = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, backups.check_db, db_file)
        took = time.monotonic() - began
        log.log(logging.INFO if took > 1 else logging.DEBUG, "checked: %s in %.1f s", db_file, took)
        try:
            init_db(db_file)
        except SchemaTooNew as exc:
            raise KnownError(str(exc)) from None
        self.writes.attach()  # the loop's connection: short lock waits
        saved = read_saved()
        self.settings = Settings(**saved.values).with_overrides(**self.overrides)
        self._report_bad_settings(saved.problems)

    def _assemble(self, path: str) -> tuple[RunnerManager, UsageService, Dispatcher, TeamService]:
        """The runners, the usage service, the notification dispatcher and the team ledger's
        service, wired together."""
        assert self.settings is not None
        manager = self.manager = RunnerManager(
            self.root, self.settings, self.ops, self.clock, search_path=path, writes=self.writes
        )
        usage = self.usage = UsageService(manager)
        manager.guard_launches(usage.check_launch)  # a spent budget refuses a launch
        team = self.team = TeamService()
        manager.guard_launches(team.check_launch)  # so does a spent team budget
        manager.when_finished(usage.import_soon)  # a finished run's last usage is read soon
        manager.import_usage_with(usage.import_now)  # a resume may need a session id from it
        dispatcher = self.dispatcher = Dispatcher(self.clock, desktop_waits=self.desktop)
        if self.desktop:  # before adoption records anything: its events reach the desktop too
            ensure_desktop_channel(self.clock())
        return manager, usage, dispatcher, team

    async def _serve(self, api: Api) -> None:
        """Serve ``api`` on 127.0.0.1 at the api_port setting (a port in use: one sentence)."""
        assert self.settings is not None
        self.runner = web.AppRunner(api.app(), access_log=None, handle_signals=False)
        await self.runner.setup()
        site = LoopbackSite(self.runner, self.settings.api_port)
        try:
            await site.start()
        except OSError as exc:
            raise PortInUse(
                f"Port {self.settings.api_port} on 127.0.0.1 is not available ({exc.strerror}); "
                "pick another with --port (0 chooses a free one)."
            ) from None
        self.port = site.port
        api.listening(self.port)
        self.url = api.url

    def _announce(self) -> None:
        """The start as an event, the runtime file that tells clients where the API is, and
        the log line."""
        with self.writes.transaction():
            events.record(
                events.SUPERVISOR_STARTED,
                "supervisor started",
                ts=self.clock(),
                body=f"Stratavore {__version__} listening on {self.url}",
                data={"pid": os.getpid(), "url": self.url},
            )
        runtime.write_runtime(
            self.root,
            runtime.RuntimeInfo(
                pid=os.getpid(),
                create_time=psutil.Process().create_time(),
                port=self.port,
                url=self.url,
                version=__version__,
            ),
        )
        log.info("started: supervisor %s on %s (data dir %s)", __version__, self.url, self.root)

    def _report_bad_settings(self, problems: dict[str, str]) -> None:
        """Saved settings that cannot be used: each named in a log line and an event, its
        default used instead."""
        defaults = Settings()
        for key, why in problems.items():
            default = getattr(defaults, key)
            log.warning("ignored: the saved setting %s (%s) for its default %r", key, why, default)
            with DB.atomic():
                events.record(
                    events.SETTING_INVALID,
                    f"setting {key} is invalid: the default is used",
                    ts=self.clock(),
                    severity="warning",
                    body=f"{why} The default, {default!r}, is used until "
                    f"`stratavore set {key} VALUE` saves a good value.",
                    data={"key": key},
                )

    async def backup(self, kind: str = "scheduled") -> backups.Backup | None:
        """Back the database up now (in a worker thread), keeping the newest
        ``backup_keep``; a failure is logged and reported as an event. A stop does not wait
        for a long backup: it is abandoned at its next step."""
        assert self.manager is not None
        keep = self.manager.settings.backup_keep
        began = time.monotonic()

        def unless_stopping(_done: int, _total: int) -> None:
            if self.stopping:
                raise backups.Abandoned

        try:
            made = await asyncio.get_running_loop().run_in_executor(
                None, backups.take, paths.db_path(self.root), kind, keep, unless_stopping
            )
        except backups.Abandoned:
            log.info("backup abandoned: the supervisor is stopping")
            return None
        except (OSError, sqlite3.Error, KnownError) as exc:
            log.warning("backup failed: %s", exc)
            with DB.atomic():
                events.record(
                    events.BACKUP_FAILED,
                    "the database backup failed",
                    ts=self.clock(),
                    severity="error",
                    body=str(exc),
                )
            return None
        log.info(
            "backed up: %s (%d bytes) in %.1f s", made.path, made.size, time.monotonic() - began
        )
        return made

    def _first_backup_at(self, now: float, interval: float) -> float:
        """One interval after the newest backup of any kind, or now when that is past."""
        found = backups.list_backups(self.root)
        return max(now, found[-1].taken_at + interval) if found else now

    @staticmethod
    def _plan_resumes(manager: RunnerManager, scheduler: AsyncIOScheduler) -> None:
        """Runners paused at a provider limit resume through a date job at the reset; a job
        that comes due while the supervisor was off runs at the next start (no grace limit:
        a late resume is still wanted)."""

        async def resume(runner_id: int) -> None:
            manager.resume_due(runner_id)

        def schedule(runner_id: int, at: float) -> None:
            scheduler.add_job(
                resume,
                DateTrigger(datetime.fromtimestamp(at, UTC)),
                args=[runner_id],
                id=f"resume-{runner_id}",
                replace_existing=True,
                misfire_grace_time=None,
            )

        def cancel(runner_id: int) -> None:
            with contextlib.suppress(JobLookupError):
                scheduler.remove_job(f"resume-{runner_id}")

        manager.use_scheduler(schedule, cancel)

    def _start_scheduler(self, manager: RunnerManager, usage: UsageService) -> None:
        """Every periodic job (the runners' chores, backups, usage imports), then the scheduler."""
        assert self.settings is not None and self.scheduler is not None
        self._add_chores(manager)
        interval = self.settings.backup_interval
        self.scheduler.add_job(
            self.backup,
            IntervalTrigger(seconds=interval),
            id="backup",
            next_run_time=datetime.fromtimestamp(self._first_backup_at(time.time(), interval), UTC),
        )
        self._add_usage_jobs(usage)
        assert self.team is not None
        wiring.add_push_job(
            self.scheduler, self.team, self.settings.team_push_interval, self.writes, manager.stop
        )
        self.scheduler.start()

    def _add_chores(self, manager: RunnerManager) -> None:
        """The runners' periodic chores: sweep, reap, heartbeat flush, log pump; the 1-second
        ones sleep while no runner is watched."""
        s = self.settings
        assert s is not None and self.scheduler is not None
        scheduler = self.scheduler

        async def reap() -> None:
            manager.reap()

        async def flush() -> None:
            manager.flush_heartbeats()

        jobs = [
            (manager.sweep, s.sweep_interval),
            (reap, s.reap_interval),
            (flush, s.heartbeat_flush_interval),
            (manager.pump_logs, s.log_pump_interval),
        ]
        for func, seconds in jobs:
            scheduler.add_job(func, IntervalTrigger(seconds=seconds), id=func.__name__)
        chores = [reap.__name__, flush.__name__, manager.pump_logs.__name__]

        def busy(active: bool) -> None:
            """Runners to watch: the 1-second chores run; none: they sleep (idle CPU)."""
            for job_id in chores:
                (scheduler.resume_job if active else scheduler.pause_job)(job_id)

        manager.watch_busy(busy)

    def _add_usage_jobs(self, usage: UsageService) -> None:
        """The usage import, at once and then every usage_import_interval, and the budgets'
        rollover at the next period boundary."""
        assert self.settings is not None and self.scheduler is not None
        scheduler = self.scheduler

        async def import_usage() -> None:
            try:
                await usage.import_now()
                await usage.rollover()  # budgets changed from the CLI are caught up with here
            except StorageError as exc:  # nothing half-written: the next import reads it again
                log.warning("import: not written: %s", exc.message)
            plan_rollover()

        async def rollover() -> None:
            await usage.rollover()
            plan_rollover()

        def plan_rollover() -> None:
            """A job at the next period boundary of any calendar budget."""
            at = budgets.next_boundary(self.clock(), usage.calendar)
            if at is not None:
                when = datetime.fromtimestamp(at + ROLLOVER_GRACE, UTC)
                scheduler.add_job(rollover, DateTrigger(when), id="rollover", replace_existing=True)

        # the first import and the catch-up on rollovers missed while off run at once
        scheduler.add_job(
            import_usage,
            IntervalTrigger(seconds=self.settings.usage_import_interval),
            id="import_usage",
            next_run_time=datetime.now(UTC),
        )

    async def stop(self, stop_runners: bool = False) -> None:
        """Stop serving; runners keep running for adoption unless ``stop_runners``."""
        self.stopping = True
        if self.manager is not None and self.url:  # it had started: report the stop
            if stop_runners:  # each stopped as `kill` would: SIGTERM, SIGKILL at the timeout
                await self.manager.stop_everything()
            # counted before shutdown() lets go of their processes
            left = sum(1 for live in self.manager.live.values() if live.identity is not None)
            self.manager.shutdown()
            runners = f"{left} runner{'s' * (left != 1)} left running"
            try:
                with self.writes.transaction():
                    events.record(
                        events.SUPERVISOR_STOPPED,
                        "supervisor stopped",
                        ts=self.clock(),
                        body=f"{runners} for adoption at next start",
                    )
            except StorageError as exc:
                log.warning("stopped: supervisor; its event was not recorded: %s", exc.message)
            log.info("stopped: supervisor (%s)", runners)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        loop = asyncio.get_running_loop()
        if self.otel is not None:  # a last export, while the database is open
            await loop.run_in_executor(None, self.otel.close)
        if self.team is not None:
            await self.team.aclose()
        self.writes.close()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.url:
            runtime.remove_runtime(self.root)
        close_db()
        self.lock.release()


def cannot_start(gate: Writes, exc: BaseException) -> KnownError | None:
    """A start stopped by the data dir (full, read-only, its DB locked) as one sentence."""
    refused = gate.explain(exc) if isinstance(exc, Exception) else None
    if refused is None:
        return None
    return KnownError(
        f"The supervisor could not start: {refused.message[0].lower()}{refused.message[1:]}"
    )


async def serve(supervisor: Supervisor) -> None:
    """Run until SIGINT/SIGTERM (Ctrl-C), then stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: KeyboardInterrupt instead
            loop.add_signal_handler(sig, stop.set)
    await supervisor.start()
    print(
        f"stratavore: supervisor listening on {supervisor.url} (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await supervisor.stop()


def run_daemon(
    port: int | None = None,
    heartbeat_interval: float | None = None,
    heartbeat_ttl: float | None = None,
    sweep_interval: float | None = None,
) -> int:
    """``stratavore daemon``: the headless supervisor in the foreground; returns an exit
    status (0 after Ctrl-C, 1 when the environment is in the way)."""
    restrict_umask()
    root = paths.data_dir()
    supervisor = Supervisor(
        root,
        api_port=port,
        heartbeat_interval=heartbeat_interval,
        heartbeat_ttl=heartbeat_ttl,
        sweep_interval=sweep_interval,
    )
    try:
        try:
            setup_logging(root)
        except OSError as exc:  # the log can't be opened: a read-only or full data folder
            raise cannot_start(supervisor.writes, exc) or exc from None
        asyncio.run(serve(supervisor))
    except KnownError as exc:
        print(f"stratavore: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
