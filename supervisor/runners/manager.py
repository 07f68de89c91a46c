"""The runner lifecycle assembled: :class:`RunnerManager` builds its collaborators, each with
one job, connects their signals, and offers the calls the API, the daemon and the usage
service make.

Everything here runs on the supervisor's asyncio loop (the plain loop of ``stratavore daemon``
or the tray app's qasync loop). Where each part of a runner's life is:

===================  ==========================================================================
``table.py``         the active runners in memory and THE transition (state + event in one
                     transaction of the write gate, committed before memory changes)
``projects.py``      the project book
``queue.py``         the caps, the queue, starting queued runners and runners again
``launcher.py``      launch and register
``restarts.py``      restart, resume, resume at a limit's reset
``spawner.py``       spawn, the pidfd exit watch, promotion to running
``exits.py``         reap, on_exit, the restart policy (backoff, fatal), catch-up of what the
                     DB refused
``stopper.py``       stop, stop many, stop everything (``trees.py``: process trees, kill)
``liveness.py``      heartbeats, the sweep, the stale-heartbeat rule
``attention.py``     hooks -> attention, the heuristic
``pausing.py``       pause at a provider limit, scheduled resume, limit reports
``workspace.py``     the runner side of git worktrees (``worktrees.py``: the git side)
``logs.py``          when output is pumped into logs (``logpump.py``: the pumping)
``reconcile.py``     adoption at start
===================  ==========================================================================

Lifecycle log lines start with a fixed verb (``spawned:``, ``success:``, ``exited:``,
``backoff:``, ``gave up:``, ``stopping:``, ``stopped:``, ``adopted:``, ``lost:``) so they can
be grepped and matched by tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from supervisor.agents import commands
from supervisor.agents.profilebook import ProfileBook
from supervisor.core import paths
from supervisor.core.settings import LiveSettings, Settings
from supervisor.runners.attention import AttentionWatch
from supervisor.runners.exits import Exits
from supervisor.runners.heartbeats import HeartbeatBook
from supervisor.runners.launcher import Launcher, LaunchGuard
from supervisor.runners.liveness import Liveness
from supervisor.runners.logpump import LogPump
from supervisor.runners.logs import Logs
from supervisor.runners.pausing import Pauses
from supervisor.runners.planlimits import PlanLimitBook
from supervisor.runners.process import ProcessOps
from supervisor.runners.projects import ProjectBook
from supervisor.runners.queue import Queue
from supervisor.runners.reconcile import Reconciler
from supervisor.runners.restarts import Restarts
from supervisor.runners.spawner import Spawner
from supervisor.runners.stopper import Stopper
from supervisor.runners.table import Live, RunnerTable
from supervisor.runners.tasks import Tasks
from supervisor.runners.trees import ProcessTrees
from supervisor.runners.workspace import Workspace
from supervisor.storage.writes import Writes

log = logging.getLogger("stratavore.runners")


class RunnerManager:
    """Owns every runner of one data dir while the supervisor runs: builds the lifecycle's
    collaborators (each given what it depends on, in order), connects their signals, and
    forwards the public calls to the one that does the work."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        ops: ProcessOps | None = None,
        clock: Callable[[], float] = time.time,
        search_path: str | None = None,
        writes: Writes | None = None,
    ) -> None:
        self.root = root
        self.clock = clock
        self.config = LiveSettings(settings)
        self.ops = ops or ProcessOps()
        self.writes = writes or Writes(root, clock)
        # the login-shell probe takes up to seconds: the supervisor runs it in a thread
        path = self.search_path = commands.search_path() if search_path is None else search_path
        self.pump = LogPump(max_bytes=settings.log_max_bytes, backups=settings.log_backups)
        self.heartbeats = HeartbeatBook()
        self.tasks = Tasks()
        self.profiles = ProfileBook(root, path)
        self.projects = ProjectBook(self.writes, clock)
        self._build(root, path, clock)
        self._connect()
        self._offer()

    def _build(self, root: Path, path: str, clock: Callable[[], float]) -> None:
        """The collaborators, each after what it depends on (Celery's bootsteps, in order)."""
        config, ops, writes, tasks = self.config, self.ops, self.writes, self.tasks
        profiles, projects = self.profiles, self.projects
        pump, heartbeats = self.pump, self.heartbeats
        table = self.table = RunnerTable(writes, projects, tasks)
        self.plan_limits = PlanLimitBook(writes, config, clock)
        pauses = self.pauses = Pauses(
            root, table, projects, profiles, config, writes, clock, self.plan_limits
        )
        attention = self.attention = AttentionWatch(
            table, projects, profiles, heartbeats, pauses, writes, clock
        )
        spawner = self.spawner = Spawner(root, table, ops, pump, tasks, path, clock)
        trees = self.trees = ProcessTrees(ops)
        queue = self.queue = Queue(table, projects, profiles, spawner, config, clock)
        exits = self.exits = Exits(
            root, table, ops, pump, spawner, queue, trees, pauses, profiles, config, tasks, clock
        )
        stopper = self.stopper = Stopper(table, trees, exits, pauses, config, writes, tasks, clock)
        self.liveness = Liveness(
            table, heartbeats, projects, ops, attention, exits, config, writes, tasks, clock
        )
        workspace = self.workspace = Workspace(
            root, table, projects, profiles, writes, tasks, clock
        )
        self.logs = Logs(table, pump, tasks)
        launcher = self.launcher = Launcher(
            table, projects, profiles, queue, spawner, workspace, heartbeats, ops, config, tasks,
            path, clock,
        )  # fmt: skip
        self.restarts = Restarts(
            table, projects, profiles, queue, exits, stopper, pauses, launcher, workspace, writes,
            tasks, path, clock,
        )  # fmt: skip
        self.reconciler = Reconciler(
            root, table, heartbeats, spawner, exits, stopper, queue, pauses, profiles, pump, ops,
            clock,
        )  # fmt: skip

    def _connect(self) -> None:
        """Who hears what: a runner that left the table is no longer watched, beaten or
        pumped, and its worktree ends; a freed slot starts the queue; refused writes are
        retried; a started process has its attention followed; a process that ended (or
        never started) has its end recorded; a runner that entered running is sampled soon."""
        table, spawner, exits = self.table, self.spawner, self.exits
        table.left.connect(spawner.unwatch)
        table.left.connect(lambda live: self.heartbeats.forget(live.row.id))
        table.left.connect(lambda live: self.pump.untrack(live.row.id))
        table.left.connect(self.workspace.runner_left)
        table.slot_freed.connect(self.queue.dequeue)
        table.retrying.connect(exits.retry_unwritten)
        spawner.started.connect(self.attention.watch)
        spawner.failed.connect(exits.record_end_or_keep)
        spawner.exited.connect(exits.exit_seen)
        spawner.promoted.connect(self.liveness.sample_soon)

    def _offer(self) -> None:
        """The calls of the API, the daemon and the usage service, each answered by the part
        whose job it is."""
        table, projects, profiles, queue = self.table, self.projects, self.profiles, self.queue
        launcher, restarts, stopper, exits = self.launcher, self.restarts, self.stopper, self.exits
        liveness, logs, pauses = self.liveness, self.logs, self.pauses
        # reading
        self.row, self.active_rows = table.row, table.active_rows
        self.active_count, self.runner_with_token = table.active_count, table.runner_with_token
        self.note_tokens = table.note_tokens
        self.background = self.tasks.background
        # projects and profiles
        self.project, self.project_name = projects.named, projects.name_of
        self.create_project = projects.create
        self.archive_project, self.set_project_cap = queue.archive_project, queue.set_project_cap
        self.profile_or_none, self.forget_profile = profiles.profile_or_none, profiles.forget
        # runners
        self.launch, self.register = launcher.launch, launcher.register
        self.stop, self.stop_soon, self.stop_many = (
            stopper.stop,
            stopper.stop_soon,
            stopper.stop_many,
        )
        self.stop_everything = stopper.stop_everything
        self.restart, self.resume = restarts.restart, restarts.resume
        self.resume_due, self.learn_sessions = restarts.resume_due, restarts.learn_sessions
        # what runners report
        self.hook, self.heartbeat = self.attention.hook, liveness.heartbeat
        self.limit_in_transcript = pauses.limit_in_transcript
        # the supervisor's jobs and wiring
        self.reconcile, self.reap = self.reconciler.reconcile, exits.reap
        self.sweep, self.flush_heartbeats = liveness.sweep, liveness.flush_heartbeats
        self.pump_logs, self.refresh_log = logs.pump_logs, logs.refresh_log
        self.watch_busy, self.use_scheduler = table.watch_busy, pauses.use_scheduler

    def guard_launches(self, guard: LaunchGuard) -> None:
        """Ask ``guard`` before each launch and resume, after the guards given before; it
        raises ApiError to refuse one (the usage service refuses those over a spent budget,
        the team service those over a spent team budget)."""
        self.launcher.guards.append(guard)

    def import_usage_with(self, import_usage: Callable[[], Awaitable[object]]) -> None:
        """Before resuming a run whose session id is not known yet, ``import_usage()`` reads
        the agents' logs (a Codex run learns its session id from the usage import)."""
        self.restarts.import_usage = import_usage

    def when_finished(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(runner_id)`` when a runner reaches an end state."""
        self.table.left.connect(lambda live: callback(live.row.id))

    @property
    def settings(self) -> Settings:
        return self.config.current

    @property
    def live(self) -> dict[int, Live]:
        return self.table.live

    @property
    def accepting(self) -> bool:
        return self.tasks.accepting

    def run_dir(self, runner_id: int) -> Path:
        return paths.run_dir(self.root, runner_id)

    def set_api_url(self, url: str) -> None:
        """Where runners reach the API; Claude Code's hooks settings file points there."""
        self.profiles.set_api_url(url)
        self.spawner.api_url = url

    def set_setting(self, key: str, value: Any) -> None:
        """Save a setting; apply it now where the running supervisor can (then queued runners
        may start under a raised cap), else at the next start."""
        if self.config.save(key, value, self.writes):
            self.queue.dequeue(self.clock())

    def shutdown(self) -> None:
        """Stop accepting work; leave runners running for adoption (``stop_everything``
        first stops them)."""
        self.tasks.accepting = False
        for live in self.table.live.values():
            if live.timer:
                live.timer.cancel()
        self.liveness.close()
        self.tasks.cancel()
        self.table.close()
        self.liveness.flush_heartbeats()
        self.logs.pump_last()
        for live in self.table.live.values():
            self.spawner.unwatch(live)
            if live.end_unrecorded is not None or live.stop_unrecorded is not None:
                # the next start reconciles it from its process and exit file, if it can
                log.warning(
                    "unrecorded: runner %s: its %s could not be written before the supervisor "
                    "stopped",
                    live.row.id,
                    "end" if live.end_unrecorded is not None else "stop",
                )
