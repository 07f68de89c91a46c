"""Runner lifecycle: launch, queue, spawn, watch, restart, stop, reconcile and sweep.

Everything here runs on the supervisor's asyncio loop (the plain loop of ``stratavore daemon``
or the tray app's qasync loop). Database writes are short and happen on the loop, through
:class:`~supervisor.storage.writes.Writes` (which never lets the loop wait long for a lock);
process-table scans and log I/O go to the default executor. Every state change goes through
:meth:`RunnerManager._transition`, which checks the transition table and writes the new state
and its event in one transaction, and changes memory only once that is committed. What is
seen of the OS while the database refuses writes (a runner's exit, a stop signal already sent,
samples and heartbeats) is kept and written as soon as it can be (:meth:`_catch_up`).

Lifecycle log lines start with a fixed verb (``spawned:``, ``success:``, ``exited:``,
``backoff:``, ``gave up:``, ``stopping:``, ``stopped:``, ``adopted:``, ``lost:``) so they can
be grepped and matched by tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.agents import commands, limits, profiles, sessions
from supervisor.agents.profilebook import ProfileBook
from supervisor.api.schemas import Heartbeat, HookIn, Launch, ProjectCreate, Register
from supervisor.core import events, paths
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.settings import LiveSettings, Settings
from supervisor.core.states import (
    ACTIVE_STATES,
    FINISHED_STATES,
    PROCESS_STATES,
    Attention,
    RunnerState,
)
from supervisor.runners import worktrees
from supervisor.runners.heartbeats import HeartbeatBook
from supervisor.runners.logpump import LOG_NAME, SPOOL_NAME, LogPump
from supervisor.runners.process import Identity, Lineage, ProcessOps, Sample, describe_exit
from supervisor.runners.projects import ProjectBook
from supervisor.runners.table import RETRY_INTERVAL, Ended, Live, RunnerTable
from supervisor.runners.tasks import Tasks
from supervisor.runners.tokens import TOKEN_VARIABLE, hash_token
from supervisor.storage import queries
from supervisor.storage.store import Profile, Project, Runner
from supervisor.storage.writes import StorageError, Writes

log = logging.getLogger("stratavore.runners")
S = RunnerState
EXIT_FILE = "exit"
FIRST_SAMPLE_DELAY = 0.5  # sample new runners soon, so listings show CPU/RSS before a sweep
BACKOFF_FACTOR = 1.5  # PM2's exp_backoff_restart_delay growth
BUSY_CPU = 2.0  # percent of a core: above it, an agent without hooks counts as working


def backoff_delay(early_exits: int, initial: float, maximum: float) -> float:
    """Seconds before restart number ``early_exits`` of a run of quick exits (0: a run that
    lasted): initial x 1.5^(n-1), capped."""
    return round(min(maximum, initial * BACKOFF_FACTOR ** max(early_exits - 1, 0)), 3)


ATTENTION_SEVERITY = {
    Attention.NEEDS_INPUT: "warning",
    Attention.FINISHED_TURN: "info",
    Attention.WORKING: "debug",
    Attention.IDLE: "debug",
}
BLOCKING_NOTIFICATIONS = frozenset({"permission_prompt", "elicitation_dialog"})


def attention_of(hook: HookIn) -> tuple[Attention | None, str]:
    """What a Claude Code hook says about the run (None: nothing new), and why in words.

    Sub-agents (``agent_id`` set) run inside a turn of the main agent: their activity means
    working, and their end (``SubagentStop``) is not the turn's end. ``idle_prompt`` is
    Claude Code's own "waiting for your input" after 60 s of nobody answering."""
    event = hook.hook_event_name
    if event in ("UserPromptSubmit", "PreToolUse", "PostToolUse", "PreCompact"):
        return Attention.WORKING, f"{event} {hook.tool_name or ''}".strip()
    if event == "PermissionRequest" or (
        event == "Notification" and hook.notification_type in BLOCKING_NOTIFICATIONS
    ):
        return Attention.NEEDS_INPUT, hook.message or "waiting for permission"
    if event == "Notification" and hook.notification_type is None and hook.message:
        # versions before notification_type: the message is all there is
        if "permission" in hook.message.lower():
            return Attention.NEEDS_INPUT, hook.message
        if "waiting for your input" in hook.message.lower():
            return Attention.IDLE, hook.message
    if event == "Notification" and hook.notification_type == "idle_prompt":
        return Attention.IDLE, hook.message or "waiting for input"
    if event == "Stop" and not hook.agent_id:
        return Attention.FINISHED_TURN, "finished its turn"
    if event == "SessionStart":
        return Attention.IDLE, f"session {hook.source or 'started'}"
    return None, ""


class RunnerManager:
    """Owns every runner of one data dir while the supervisor runs."""

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
        self.config = LiveSettings(settings)
        self.ops = ops or ProcessOps()
        self.clock = clock
        self.writes = writes or Writes(root, clock)
        self.api_url = ""
        # the login-shell probe takes up to seconds: the supervisor runs it in a thread
        self.search_path = commands.search_path() if search_path is None else search_path
        self.pump = LogPump(max_bytes=settings.log_max_bytes, backups=settings.log_backups)
        self.heartbeats = HeartbeatBook()
        self.tasks = Tasks()
        self.profiles = ProfileBook(root, self.search_path)
        self.projects = ProjectBook(self.writes, clock)
        self.table = RunnerTable(self.writes, self.projects, self.tasks)
        self._tree_requests: dict[Identity, asyncio.Future[list[Identity]]] = {}
        self._tree_scan: asyncio.Future[None] | None = None
        self._sample_timer: asyncio.TimerHandle | None = None
        self._exits: set[int] = set()  # runners whose pidfd fired, finished on the next turn
        self._sweep_lock = asyncio.Lock()
        # Called with (project name, profile, command, now) before a launch; raises ApiError
        # to refuse it (the usage service checks budgets here).
        self.launch_guard: Callable[[str, str | None, list[str], float], None] | None = None
        self.on_finished: Callable[[int], None] | None = None  # a runner reached an end state
        # The supervisor's scheduler: a job that resumes a paused runner at a time (UTC epoch
        # seconds), and its removal. Without them (a bare manager) nothing resumes by itself.
        self.schedule_resume: Callable[[int, float], None] | None = None
        self.cancel_resume: Callable[[int], None] | None = None
        self.table.left.connect(self._left)
        self.table.retrying.connect(self._retry_unwritten)

    def _left(self, live: Live) -> None:
        """A runner reached an end state and left the table."""
        self._set_identity(live, None)
        self.heartbeats.forget(live.row.id)
        self.pump.untrack(live.row.id)
        if self.on_finished is not None:
            self.on_finished(live.row.id)
        runner = live.row
        if runner.worktree:
            tree = worktrees.Worktree.from_json(runner.worktree)
            self.tasks.soon(functools.partial(self._end_worktree, runner.id, tree))

    @property
    def settings(self) -> Settings:
        return self.config.current

    @property
    def live(self) -> dict[int, Live]:
        return self.table.live

    @property
    def accepting(self) -> bool:
        return self.tasks.accepting

    def background(self, coro: Any) -> asyncio.Task[Any]:
        return self.tasks.background(coro)

    def watch_busy(self, callback: Callable[[bool], None]) -> None:
        self.table.watch_busy(callback)

    # --- projects -----------------------------------------------------------------------------
    def project_name(self, project_id: int) -> str:
        return self.projects.name_of(project_id)

    def project(self, name: str) -> Project:
        return self.projects.named(name)

    def create_project(self, request: ProjectCreate, now: float | None = None) -> Project:
        return self.projects.create(request, now)

    def archive_project(self, name: str) -> Project:
        project = self.projects.named(name)
        active = self.table.active_count(project.id)
        if active:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Project '{project.name}' has {active} active runners; stop them first.",
            )
        self.projects.save(project, archived=True)
        return project

    def set_project_cap(self, name: str, max_runners: int | None) -> Project:
        """Change a project's own cap (None: the global setting); queued runners may start."""
        project = self.projects.named(name)
        self.projects.save(project, max_runners=max_runners)
        self._dequeue(self.clock())
        return project

    def set_setting(self, key: str, value: Any) -> None:
        """Save a setting; apply it now where the running supervisor can (then queued runners
        may start under a raised cap), else at the next start."""
        if self.config.save(key, value, self.writes):
            self._dequeue(self.clock())

    def active_count(self, project_id: int) -> int:
        return self.table.active_count(project_id)

    def run_dir(self, runner_id: int) -> Path:
        return paths.run_dir(self.root, runner_id)

    def set_api_url(self, url: str) -> None:
        """Where runners reach the API; Claude Code's hooks settings file points there."""
        self.api_url = url
        self.profiles.set_api_url(url)

    def profile_or_none(self, name: str | None) -> Profile | None:
        return self.profiles.profile_or_none(name)

    def forget_profile(self, name: str) -> None:
        self.profiles.forget(name)

    def row(self, runner_id: int) -> Runner:
        return self.table.row(runner_id)

    def active_rows(self, project_id: int | None = None) -> list[Runner]:
        return self.table.active_rows(project_id)

    def runner_with_token(self, runner_id: int, token: str) -> Runner:
        return self.table.runner_with_token(runner_id, token)

    def flush_heartbeats(self) -> int:
        """Write the heartbeats received since the last flush, in one transaction; how many
        runners' (0 when the DB refused them: they are kept for the next flush)."""
        batch = self.heartbeats.take()
        if batch:
            try:
                with self.writes.transaction():
                    queries.store_heartbeats(batch)
            except StorageError:
                self.heartbeats.keep(batch)
                return 0
            for runner_id, values in batch.items():
                if (live := self.table.live.get(runner_id)) is not None:
                    live.row.__data__.update(values)
        return len(batch)

    def _set_flag(self, runner: Runner, unresponsive: bool, reason: str, now: float) -> None:
        """Flag or clear ``unresponsive`` with its event (not a state change: not killed).
        When the DB refuses it, nothing changes: the next sweep or heartbeat sees it again."""
        project = self.projects.name_of(runner.project_id)
        kind = events.RUNNER_UNRESPONSIVE if unresponsive else events.RUNNER_RESPONSIVE
        word = "unresponsive" if unresponsive else "responsive again"
        try:
            with self.writes.transaction():
                queries.update_runner(runner.id, unresponsive=unresponsive)
                events.record(
                    kind,
                    f"runner {runner.id} ({project}) is {word}",
                    ts=now,
                    severity="warning" if unresponsive else "info",
                    runner_id=runner.id,
                    project=project,
                    body=reason,
                )
        except StorageError:
            return
        runner.unresponsive = unresponsive
        log.info(
            "%s runner %s: %s",
            "unresponsive:" if unresponsive else "responsive:",
            runner.id,
            reason,
        )

    # --- launch -----------------------------------------------------------------------------
    def launch(
        self,
        request: Launch,
        now: float | None = None,
        worktree: worktrees.Worktree | None = None,
    ) -> Runner:
        """Create a runner and start it, or queue it behind a full cap. With a profile, its
        template gives the command line (a new session's id chosen here, for agents that take
        one); ``worktree`` (made beforehand, off the loop) becomes its working folder."""
        now = self.clock() if now is None else now
        self.tasks.check_accepting()
        project = self.projects.named(request.project)
        if project.archived:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Project '{project.name}' is archived; launch in another project.",
            )
        if not os.path.isdir(project.path):
            raise ApiError(
                ErrorCode.INVALID,
                f"Project '{project.name}' folder {project.path} does not exist any more.",
            )
        restart, expected, env = request.restart, [0], dict(request.env)
        extra = list(request.command or [])
        profile = self.profiles.profile(request.profile)
        plan = None
        if profile is not None:
            mode = request.mode or ("batch" if request.prompt else "interactive")
            plan = self.profiles.plan(
                profile,
                mode=mode,
                prompt=request.prompt,
                session_id=request.resume_session,
                resume=request.resume_session is not None,
                args=extra,
            )
            argv = plan.argv
            restart = restart or profile.restart
            expected = list(profile.expected_exit_codes)
            env = {**profile.env, **env}
        elif request.prompt or request.mode or request.resume_session:
            raise ApiError(
                ErrorCode.INVALID,
                "A prompt, a mode or a session to resume needs a profile (--profile NAME).",
            )
        elif extra:
            argv = extra
        else:
            raise ApiError(ErrorCode.INVALID, "Give a command to run or a profile to launch.")
        argv = commands.resolve(argv, project.path, self.search_path)
        if self.launch_guard is not None:
            self.launch_guard(project.name, request.profile, argv, now)
        state = S.STARTING
        if not self._has_slot(project):
            if request.no_queue:
                raise ApiError(ErrorCode.CAP_REACHED, self._cap_sentence(project))
            state = S.QUEUED
        s = self.config.current
        runner = Runner(
            project=project,
            profile=request.profile,
            command=argv,
            cwd=worktrees.cwd_in(worktree, project.path) if worktree else project.path,
            env=env,
            state=None,
            restart=restart or "never",
            expected_exit_codes=expected,
            start_secs=s.start_secs,
            max_retries=s.max_retries,
            backoff_initial=s.backoff_initial,
            backoff_max=s.backoff_max,
            created_at=now,
            token_hash="",
            mode=plan.mode if plan else "command",
            prompt=request.prompt,
            session_id=plan.session_id if plan else None,
            extra_args=extra if plan else [],
            resume_on_limit=self._resume_on_limit(profile, request.resume_on_limit, plan),
            worktree=worktree.to_json() if worktree else None,
        )
        if state is S.QUEUED:
            self.table.transition(runner, state, self._cap_sentence(project), now, queued_at=now)
        else:
            self.table.transition(runner, state, None, now, started_at=now)
        if state is S.STARTING:
            self._spawn(runner, now)
        else:
            log.info("queued: runner %s (%s)", runner.id, runner.reason)
        return runner

    @staticmethod
    def _resume_on_limit(
        profile: Profile | None, asked: bool | None, plan: profiles.Plan | None
    ) -> bool:
        """Whether a run paused at a provider limit resumes by itself at the reset: as asked,
        else as its profile says, else for batch runs (nobody is at an interactive one)."""
        if plan is None:
            return False
        if asked is not None:
            return asked
        if profile is not None and profile.resume_on_limit is not None:
            return bool(profile.resume_on_limit)
        return plan.mode == "batch"

    def register(self, request: Register, now: float | None = None) -> tuple[Runner, str]:
        """Record a process started outside the supervisor (by stratavore-agent). With a
        profile, the runner's command line is the profile's interactive one (resuming
        ``resume_session`` if given), which the wrapper then runs."""
        now = self.clock() if now is None else now
        self.tasks.check_accepting()
        profile = self.profiles.profile(request.profile)
        plan = None
        if profile is not None:
            plan = self.profiles.plan(
                profile,
                mode="interactive",
                session_id=request.resume_session,
                resume=request.resume_session is not None,
                args=request.command,
            )
        elif not request.command:
            raise ApiError(ErrorCode.INVALID, "Give the command to run, or a profile.")
        if request.project:
            project = self.projects.named(request.project)
        else:
            found = queries.project_containing(os.path.realpath(request.cwd))
            if found is None:
                raise ApiError(
                    ErrorCode.INVALID,
                    f"No project contains {request.cwd}; pass --project NAME or create one "
                    "with `stratavore new NAME --path DIR`.",
                )
            project = found
        created = self.ops.create_time(request.pid)
        if created is None:
            raise ApiError(ErrorCode.INVALID, f"No process with pid {request.pid} is running.")
        for live in self.table.live.values():
            if live.identity == Identity(request.pid, created):
                raise ApiError(
                    ErrorCode.CONFLICT,
                    f"Process {request.pid} is already runner {live.row.id}.",
                )
        token = secrets.token_urlsafe(24)
        runner = Runner(
            project=project,
            profile=request.profile,
            command=(
                commands.resolve(plan.argv, request.cwd, self.search_path)
                if plan
                else list(request.command)
            ),
            cwd=request.cwd,
            state=None,
            supervised=False,
            pid=request.pid,
            create_time=created,
            created_at=now,
            started_at=now,
            token_hash=hash_token(token),
            mode=plan.mode if plan else "command",
            session_id=plan.session_id if plan else None,
            extra_args=list(request.command) if plan else [],
        )
        self.table.transition(
            runner, S.RUNNING, "registered by stratavore-agent", now, data={"pid": request.pid}
        )
        self._set_identity(self.table.live[runner.id], Identity(request.pid, created))
        self.heartbeats.last_seen[runner.id] = now  # the TTL also covers a silent registrant
        log.info("adopted: runner %s pid %s registered by stratavore-agent", runner.id, request.pid)
        return runner, token

    def _project_cap(self, project: Project) -> int:
        return project.max_runners or self.config.current.max_runners_per_project

    def _has_slot(self, project: Project) -> bool:
        return (
            self.table.slots.total() < self.config.current.max_runners_global
            and self.table.slots[project.id] < self._project_cap(project)
        )

    def _cap_sentence(self, project: Project) -> str:
        cap = self._project_cap(project)
        if self.table.slots[project.id] >= cap:
            how = "stratavore set max_runners_per_project N" + (
                f" --project {project.name}" if project.max_runners else ""
            )
            return (
                f"Project '{project.name}' already has {self.table.slots[project.id]} of {cap} "
                f"runners; stop one or raise the cap with `{how}`."
            )
        return (
            f"{self.table.slots.total()} of {self.config.current.max_runners_global} runners are "
            "active; stop one or raise the cap with `stratavore set max_runners_global N`."
        )

    # --- spawning ---------------------------------------------------------------------------
    def _spawn(self, runner: Runner, now: float) -> None:
        """Start the runner's process (it is already in ``starting``)."""
        run_dir = paths.run_dir(self.root, runner.id)
        token = secrets.token_urlsafe(24)
        env = {
            **os.environ,
            "PATH": self.search_path,
            **runner.env,
            "STRATAVORE_RUNNER_ID": str(runner.id),
            TOKEN_VARIABLE: token,
            "STRATAVORE_API": self.api_url,
        }
        live = self.table.live[runner.id]
        try:
            paths.private_dir(run_dir)
            ident = self.ops.spawn(
                runner.command, runner.cwd, env, run_dir / SPOOL_NAME, run_dir / EXIT_FILE
            )
        except (OSError, ValueError) as exc:  # ValueError: what exec cannot take
            log.warning("spawnerr: runner %s: %s", runner.id, exc)
            live.end_unrecorded = Ended(
                None, now, runner.log_offset, None, f"could not start: {exc}"
            )
            self._record_end_or_keep(live)
            return
        self._set_identity(live, ident)
        # the process runs: its identity is a fact, kept and written later if the DB refuses
        self.table.write_fields(
            {
                runner.id: {
                    "pid": ident.pid,
                    "create_time": ident.create_time,
                    "token_hash": hash_token(token),
                }
            }
        )
        self._watch_attention(live, now)
        self.pump.track(runner.id, run_dir, runner.log_offset)
        log.info("spawned: runner %s with pid %s: %s", runner.id, ident.pid, runner.command)
        self._schedule_promotion(runner, now)

    def _schedule_promotion(self, runner: Runner, now: float) -> None:
        remaining = runner.start_secs - (now - (runner.started_at or now))
        live = self.table.live[runner.id]
        if remaining <= 0:
            self._promote(runner.id)
        else:
            live.timer = self.tasks.loop.call_later(remaining, self._promote, runner.id)

    def _promote(self, runner_id: int, now: float | None = None) -> None:
        """``starting`` -> ``running`` once the start-success window has passed."""
        live = self.table.live.get(runner_id)
        if (
            live is None
            or live.state is not S.STARTING
            or live.end_unrecorded is not None
            or live.stop_unrecorded is not None  # stopped before it was promoted
        ):
            return
        now = self.clock() if now is None else now
        runner = live.row
        try:
            # STARTING -> RUNNING: a start counts only after start_secs up
            self.table.transition(runner, S.RUNNING, None, now, early_exits=0)
        except StorageError:
            live.timer = self.tasks.loop.call_later(RETRY_INTERVAL, self._promote, runner_id)
            return
        log.info("success: runner %s entered running (up > %s s)", runner_id, runner.start_secs)
        if self._sample_timer is None:
            self._sample_timer = self.tasks.loop.call_later(FIRST_SAMPLE_DELAY, self._first_sample)

    def _first_sample(self) -> None:
        self._sample_timer = None
        self.tasks.background(self.sweep())

    # --- exits ------------------------------------------------------------------------------
    def _set_identity(self, live: Live, ident: Identity | None) -> None:
        """Record the runner's root process and watch for its end: a pidfd on the loop where
        the OS has them (Linux; any process, not only our children), else the reap poll."""
        if live.exit_fd is not None:
            with contextlib.suppress(Exception):
                self.tasks.loop.remove_reader(live.exit_fd)
            os.close(live.exit_fd)
            live.exit_fd = None
        live.identity = ident
        if ident is None:
            return
        fd = self.ops.open_exit_watch(ident)
        if fd is None:
            return
        try:
            self.tasks.loop.add_reader(fd, self._on_exit_fd, live.row.id)
        except (NotImplementedError, RuntimeError):
            os.close(fd)
            return
        live.exit_fd = fd

    def _on_exit_fd(self, runner_id: int) -> None:
        """A watched root ended. Exits that arrive together (a stop-all) are finished in one
        transaction: one commit instead of one per runner."""
        live = self.table.live.get(runner_id)
        if live is not None and live.exit_fd is not None:
            self.tasks.loop.remove_reader(live.exit_fd)  # level-triggered: it would fire again
        if not self._exits and self.tasks.accepting:
            self.tasks.loop.call_soon(self.tasks.soon, self._finish_exits)
        self._exits.add(runner_id)

    async def _finish_exits(self) -> None:
        batch, self._exits = self._exits, set()
        ended = []
        for runner_id in sorted(batch):
            live = self.table.live.get(runner_id)
            if live is not None and live.identity is not None:
                gone, code = self.ops.poll(live.identity)
                if gone:
                    ended.append((runner_id, code))
                elif live.exit_fd is not None:  # not expected after the pidfd fired: watch on
                    self.tasks.loop.add_reader(live.exit_fd, self._on_exit_fd, runner_id)
        # Their last output goes into the logs first, in a worker thread (file I/O stays off
        # the loop); on_exit's own drain then finds nothing new.
        try:
            await self.tasks.loop.run_in_executor(None, self._drain_logs, [rid for rid, _ in ended])
        except RuntimeError:  # the loop is closing and its executor is gone: these runners
            return  # are finished by the reconcile of the next start, from their exit files
        now = self.clock()
        for runner_id, code in ended:  # each its own transaction: one refused keeps only itself
            self._finish_gone(runner_id, code, now)

    def _drain_logs(self, runner_ids: list[int]) -> None:
        """Pump the last output of ended runners (a worker thread), and look there and in
        their agents' own logs for a provider's usage limit."""
        now = self.clock()
        for runner_id in runner_ids:
            with contextlib.suppress(KeyError):  # not tracked: nothing to drain
                self.pump.drain(runner_id)
            live = self.table.live.get(runner_id)
            if live is not None:
                live.limit, live.limit_checked = self._find_limit(live.row, now), True

    def _find_limit(self, runner: Runner, now: float) -> limits.LimitHit | None:
        """The usage limit an agent run ended at, if it did (None for plain commands)."""
        profile = self.profiles.profile_or_none(runner.profile)
        if profile is None or profile.agent not in sessions.LIMIT_AGENTS:
            return None
        log_path = paths.run_dir(self.root, runner.id) / LOG_NAME if runner.supervised else None
        return sessions.find_limit(
            profile.agent,
            runner.session_id,
            log_path,
            runner.started_at or now,
            now,
            self.config.zone,
        )

    def reap(self, now: float | None = None) -> int:
        """Notice runners whose process ended without a pidfd watching them; how many."""
        now = self.clock() if now is None else now
        ended = []
        for runner_id, live in list(self.table.live.items()):
            if live.identity is not None and live.exit_fd is None and live.end_unrecorded is None:
                gone, code = self.ops.poll(live.identity)
                if gone:
                    ended.append((runner_id, code))
        for runner_id, code in ended:
            self._finish_gone(runner_id, code, now)
        return len(ended)

    def _finish_gone(self, runner_id: int, code: int | None, now: float) -> None:
        """The runner's root is gone; ``code`` is known only when we reaped it ourselves.
        Otherwise it comes from the trampoline's file or stratavore-agent's final heartbeat."""
        live = self.table.live.get(runner_id)
        if live is None:
            return
        if code is None and live.row.supervised:
            code = self.ops.read_exit_file(paths.run_dir(self.root, runner_id) / EXIT_FILE)
        elif code is None:
            code = live.final_exit_code
        self.on_exit(runner_id, code, now)

    def on_exit(self, runner_id: int, code: int | None, now: float) -> None:
        """The runner's root process ended with ``code`` (None: unknown): what is left of it
        is ended, once, and its end recorded, or kept until the DB takes it."""
        live = self.table.live.get(runner_id)
        if (
            live is None
            or live.state not in (S.STARTING, S.RUNNING, S.STOPPING)
            or live.end_unrecorded is not None
        ):
            return
        runner = live.row
        offset = self.pump.drain(runner_id) if runner.supervised else runner.log_offset
        log.info("exited: runner %s %s", runner_id, describe_exit(code))
        stopping = live.state is S.STOPPING or live.stop_unrecorded is not None
        if not stopping and live.row.supervised:
            # What is left of the runner's process group has nobody watching it any more
            # (e.g. the command's children after the trampoline was killed): end it too.
            self._kill_all([], live)
        if stopping:
            self._kill_all(live.stop_tree, live)  # what remains of its tree and group
        pid = live.identity.pid if live.identity is not None else runner.pid
        live.end_unrecorded = Ended(code, now, offset, pid)
        self._record_end_or_keep(live)

    def _record_end_or_keep(self, live: Live) -> None:
        """Record what happened to the runner, or keep it and try again soon."""
        try:
            self._catch_up(live)
        except StorageError as exc:
            log.warning(
                "unrecorded: runner %s ended; kept until it can be written (%s)",
                live.row.id,
                exc.message,
            )
            self.table.retry_later()

    def _record_end(self, live: Live) -> None:
        """Write the runner's end (``live.end_unrecorded``) and what follows from it: stopped
        (and restarted if asked), paused at a limit, exited, failed, fatal or backing off.
        Raises :class:`StorageError`, having changed nothing, while the DB refuses it."""
        end = live.end_unrecorded
        assert end is not None
        runner, runner_id, code, now, offset = live.row, live.row.id, end.code, end.at, end.offset
        if end.failed is not None:
            # STARTING -> FAILED: its process could not be started
            self.table.transition(runner, S.FAILED, end.failed, now, ended_at=now)
            live.end_unrecorded = None
            self._dequeue(now)
            return
        how = describe_exit(code)
        ended = {"exit_code": code, "ended_at": now, "log_offset": offset, "pid": end.pid}
        data = {"exit_code": code}
        if live.state is S.STOPPING:
            restart = live.restart_after_stop
            why = "stopped by user" + (
                f" (killed after the {self.config.current.stop_timeout:g} s stop timeout)"
                if live.killed_at_deadline
                else ""
            )
            # STOPPING -> STOPPED
            self.table.transition(runner, S.STOPPED, why, now, data=data, **ended)
            live.end_unrecorded = None
            log.info("stopped: runner %s (%s)", runner_id, why)
            if restart:
                try:
                    self._start_again(runner, self.clock(), "restarted by user")
                except StorageError as exc:
                    log.warning("restart: runner %s stopped, not started again: %s", runner_id, exc)
            self._dequeue(now)
            return
        if not live.limit_checked:
            live.limit, live.limit_checked = self._find_limit(runner, now), True
        if live.limit is not None:
            self._pause(runner, live.limit, code, now, offset)
            self._dequeue(now)
            return
        expected = code is not None and code in runner.expected_exit_codes
        outcome = S.EXITED if expected else S.FAILED
        wants_restart = runner.supervised and (
            runner.restart == "always" or (runner.restart == "on-failure" and not expected)
        )
        if not wants_restart:
            if not runner.supervised and code is None:
                how = "disappeared without reporting an exit status"
            # STARTING/RUNNING -> EXITED/FAILED
            self.table.transition(runner, outcome, how, now, data=data, **ended)
            live.end_unrecorded = None
            self._dequeue(now)
            return
        early = live.state is S.STARTING
        early_exits = runner.early_exits + 1 if early else 0
        if early and early_exits > runner.max_retries:
            why = f"gave up: exited too quickly {early_exits} times in a row (last: {how})"
            # STARTING -> FATAL
            self.table.transition(
                runner, S.FATAL, why, now, data=data, early_exits=early_exits, **ended
            )
            live.end_unrecorded = None
            log.warning("gave up: runner %s exited too quickly %d times", runner_id, early_exits)
            self._dequeue(now)
            return
        delay = backoff_delay(early_exits, runner.backoff_initial, runner.backoff_max)
        why = f"{how}; restarting in {delay:g} s"
        if early:
            why += f" (quick exit {early_exits} of {runner.max_retries} allowed)"
        # STARTING/RUNNING -> BACKOFF
        self.table.transition(
            runner,
            S.BACKOFF,
            why,
            now,
            data={**data, "delay": delay},
            early_exits=early_exits,
            next_start_at=now + delay,
            exit_code=code,
            pid=None,
            create_time=None,
        )
        live.end_unrecorded = None
        log.info("backoff: runner %s %s", runner_id, why)
        self._schedule_backoff(runner_id, now + delay - self.clock())

    def _schedule_backoff(self, runner_id: int, delay: float) -> None:
        live = self.table.live[runner_id]
        self._set_identity(live, None)
        live.timer = self.tasks.loop.call_later(
            max(delay, 0), self._restart_from_backoff, runner_id
        )

    def _restart_from_backoff(self, runner_id: int) -> None:
        """The backoff timer: start the runner again (in a second, if the DB refuses it)."""
        live = self.table.live.get(runner_id)
        if live is None or live.state is not S.BACKOFF:
            return
        try:
            self._start_from_backoff(live.row)
        except StorageError:
            live.timer = self.tasks.loop.call_later(
                RETRY_INTERVAL, self._restart_from_backoff, runner_id
            )

    def _start_from_backoff(self, runner: Runner) -> None:
        now = self.clock()
        # BACKOFF -> STARTING
        self.table.transition(
            runner,
            S.STARTING,
            f"restart {runner.restarts + 1}",
            now,
            restarts=runner.restarts + 1,
            started_at=now,
            next_start_at=None,
            exit_code=None,
            **self.profiles.fresh_session(runner),
        )
        self._spawn(runner, now)

    def _start_again(self, runner: Runner, now: float, why: str, **fields: Any) -> None:
        """A finished (or paused) runner started again by the user, or resumed: now, or
        queued behind a cap. ``fields`` (a resume's command line) are written with it."""
        project = self.projects.by_id(runner.project_id)
        reset = {
            "exit_code": None,
            "ended_at": None,
            "early_exits": 0,
            "restarts": runner.restarts + 1,
            "pid": None,
            "create_time": None,
            "limit_resets_at": None,
            **(fields or self.profiles.fresh_session(runner)),
        }
        if self._has_slot(project):
            # STOPPED/EXITED/FAILED/FATAL/LOST -> STARTING
            self.table.transition(runner, S.STARTING, why, now, started_at=now, **reset)
            self._spawn(runner, now)
        else:
            self.table.transition(
                runner,
                S.QUEUED,
                f"{why}; {self._cap_sentence(project)}",
                now,
                queued_at=now,
                **reset,
            )

    def _dequeue(self, now: float) -> None:
        """Start queued runners, oldest first, while their caps allow."""
        for runner in list(self.table.queued.values()):
            if self.table.slots.total() >= self.config.current.max_runners_global:
                break
            if self._has_slot(self.projects.by_id(runner.project_id)):
                try:
                    # QUEUED -> STARTING
                    self.table.transition(runner, S.STARTING, None, now, started_at=now)
                except StorageError:  # stays queued; tried again soon
                    self.table.retry_later()
                    return
                self._spawn(runner, now)

    # --- stop and restart ---------------------------------------------------------------------
    def stop(self, runner_id: int, force: bool = False, now: float | None = None) -> Runner:
        """Stop a runner: queued/backoff end at once; a process gets the polite signal, then
        its whole tree is killed at the deadline (at once with ``force``).

        A stop the DB refuses to record is carried out all the same (the signal is sent) and
        recorded once it can be; :class:`StorageError` says so."""
        now = self.clock() if now is None else now
        runner = self._current(runner_id)
        state = RunnerState(runner.state)
        if state in FINISHED_STATES:
            raise ApiError(
                ErrorCode.CONFLICT, f"Runner {runner_id} is not running (it is {state.value})."
            )
        live = self.table.live[runner_id]
        live.restart_after_stop = False
        if state in (S.QUEUED, S.BACKOFF, S.PAUSED):
            # QUEUED/BACKOFF/PAUSED -> STOPPED
            self.table.transition(runner, S.STOPPED, "stopped by user", now, ended_at=now)
            if state is S.PAUSED and self.cancel_resume is not None:
                self.cancel_resume(runner_id)
            self._dequeue(now)
            return runner
        if state is S.STOPPING or live.stop_unrecorded is not None:
            if force and live.stop_task is not None:
                live.stop_task.cancel()
                live.stop_task = self.tasks.background(self._stop_tree(runner_id, 0.0))
            if live.stop_unrecorded is not None:
                live.stop_unrecorded = (live.stop_unrecorded[0] or force, live.stop_unrecorded[1])
                self._stop_recorded_or_say_so(live)
            return runner
        try:
            # STARTING/RUNNING -> STOPPING
            self.table.transition(
                runner,
                S.STOPPING,
                "stop requested by user",
                now,
                stop_requested_at=now,
                stop_force=force,
            )
        except StorageError:
            live.stop_unrecorded = (force, now)
            self._begin_stop(runner_id, force)
            self._stop_recorded_or_say_so(live)
        self._begin_stop(runner_id, force)
        return runner

    def _stop_recorded_or_say_so(self, live: Live) -> None:
        """A stop signal was sent: record the stop now, else say that it was sent and will
        be recorded once the DB can be written (:class:`StorageError`)."""
        try:
            self._catch_up(live)
        except StorageError as exc:
            self.table.retry_later()
            raise self.writes.error(
                exc.problem,
                f"Runner {live.row.id} was sent the stop signal, but "
                f"{self.writes.clause(exc.problem)}: its stop is recorded once it can be "
                "written.",
            ) from None

    def _current(self, runner_id: int) -> Runner:
        """The runner's row, after writing what was kept of it (so a command acts on what
        really happened); :class:`StorageError` while the DB refuses that."""
        live = self.table.live.get(runner_id)
        if live is not None and live.end_unrecorded is not None:
            self._catch_up(live)
        return self.table.row(runner_id)

    def stop_many(
        self, runner_ids: list[int], force: bool = False, now: float | None = None
    ) -> list[Runner]:
        """Stop several runners in one transaction; those already finished are left as they
        are. Queued ones go first, so that none of them is started on the way."""
        now = self.clock() if now is None else now
        rows = [self.table.live[i].row for i in runner_ids if i in self.table.live]
        rows.sort(key=lambda row: row.state != S.QUEUED)
        refused: list[tuple[int, StorageError]] = []
        for row in rows:  # each its own transaction: one refused stops none of the others
            try:
                self.stop(row.id, force, now)
            except StorageError as exc:
                refused.append((row.id, exc))
            except ApiError:  # it ended meanwhile (its end was kept, and written just now)
                continue
        if len(refused) == 1:
            raise refused[0][1]
        if refused:
            problem = refused[0][1].problem
            raise self.writes.error(
                problem,
                f"{len(refused)} of {len(rows)} stops could not be recorded "
                f"({self.writes.clause(problem)}): runners {', '.join(str(i) for i, _ in refused)} "
                "that were running were sent the stop signal, and their stops are recorded once "
                "it can be written.",
            )
        return [self.table.row(i) for i in runner_ids]

    async def stop_everything(self) -> None:
        """Stop every active runner and wait until each has ended (or been killed at the
        stop timeout)."""
        with contextlib.suppress(StorageError):  # the signals are sent all the same
            self.stop_many(
                [rid for rid, live in self.table.live.items() if live.state is not S.STOPPING]
            )
        tasks = [live.stop_task for live in self.table.live.values() if live.stop_task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=self.config.current.stop_timeout + 5.0)

    def _begin_stop(self, runner_id: int, force: bool) -> None:
        live = self.table.live[runner_id]
        if live.timer:
            live.timer.cancel()
        if live.stop_task is not None and not live.stop_task.done():
            return  # under way: the signal was sent when the stop could not be recorded
        assert live.identity is not None
        log.info("stopping: runner %s pid %s", runner_id, live.identity.pid)
        timeout = 0.0 if force else self.config.current.stop_timeout
        live.stop_task = self.tasks.background(self._stop_tree(runner_id, timeout))

    async def _stop_tree(self, runner_id: int, timeout: float) -> None:
        """Remember the tree, send the polite signal, kill what is left at the deadline.

        The tree is taken before the signal: a parent that dies of it at once would otherwise
        orphan children (even ones in their own session) before they could be seen."""
        live = self.table.live.get(runner_id)
        if live is None or live.identity is None:
            return
        root = live.identity
        live.stop_tree = await self._descendants(root)
        self.ops.signal_polite(self._lineage(live), group=live.row.supervised)
        await asyncio.sleep(timeout)
        live = self.table.live.get(runner_id)
        if live is None or (live.state is not S.STOPPING and live.stop_unrecorded is None):
            return
        tree = live.stop_tree + await self._descendants(root)
        live.killed_at_deadline = True
        killed = await self.tasks.loop.run_in_executor(None, self._kill_all, [root, *tree], live)
        log.info("stopping: runner %s killed %d processes at the deadline", runner_id, killed)
        self.reap()

    def _kill_all(self, idents: list[Identity], live: Live) -> int:
        group = self._lineage(live) if live.row.supervised and live.identity else None
        return self.ops.kill(list(dict.fromkeys(idents)), group)

    @staticmethod
    def _lineage(live: Live) -> Lineage:
        """What proves a process is this runner's before its group is signalled: its root,
        the tree taken at the stop, and its token in the environment (see ProcessOps)."""
        assert live.identity is not None
        mark = (TOKEN_VARIABLE, live.row.token_hash)
        return Lineage(live.identity, frozenset(live.stop_tree), mark)

    async def _descendants(self, root: Identity) -> list[Identity]:
        """``root``'s descendants; concurrent requests share one process-table scan."""
        future = self._tree_requests.get(root)
        if future is None:
            future = self._tree_requests[root] = self.tasks.loop.create_future()
            if self._tree_scan is None:
                self._tree_scan = self.tasks.loop.create_future()
                self.tasks.loop.call_soon(self.tasks.soon, self._scan_trees)
        return await future

    async def _scan_trees(self) -> None:
        requests, self._tree_requests = self._tree_requests, {}
        scan, self._tree_scan = self._tree_scan, None
        try:
            trees = await self.tasks.loop.run_in_executor(
                None, self.ops.descendants, list(requests)
            )
            for root, future in requests.items():
                if not future.done():
                    future.set_result(trees.get(root, []))
        except Exception as exc:  # hand the failure to every waiter, not to the loop
            for future in requests.values():
                if not future.done():
                    future.set_exception(exc)
        finally:
            if scan is not None and not scan.done():
                scan.set_result(None)

    def restart(self, runner_id: int, now: float | None = None) -> Runner:
        now = self.clock() if now is None else now
        self.tasks.check_accepting()
        runner = self._current(runner_id)
        state = RunnerState(runner.state)
        if not runner.supervised:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner_id} was started outside the supervisor (stratavore-agent); "
                "restart it where it runs.",
            )
        if state is S.QUEUED:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner_id} is queued; it starts when a slot frees.",
            )
        if state in FINISHED_STATES or state is S.PAUSED:
            self._start_again(runner, now, "restarted by user")
            if state is S.PAUSED and self.cancel_resume is not None:
                self.cancel_resume(runner_id)
        elif state is S.BACKOFF:
            timer = self.table.live[runner_id].timer
            self._start_from_backoff(runner)  # refused: it stays in backoff, its timer set
            if timer is not None:
                timer.cancel()
        else:
            if state is not S.STOPPING:
                self.stop(runner_id, now=now)
            self.table.live[runner_id].restart_after_stop = True
        return self.table.row(runner_id)

    # --- provider limits and resume -------------------------------------------------------------
    def _pause(
        self, runner: Runner, hit: limits.LimitHit, code: int | None, now: float, offset: int
    ) -> None:
        """RUNNING/STARTING -> PAUSED: the run ended at the provider's usage limit. It resumes
        by itself at the reset (plus a minute) when its resume_on_limit says so."""
        when = limits.describe_reset(hit.resets_at, now, self.config.zone)
        auto = runner.resume_on_limit and profiles.can_resume(
            self.profiles.profile_or_none(runner.profile)
        )
        why = f"limit: {hit.message} ({when}" + ("; resumes then)" if auto else ")")
        self.table.transition(
            runner,
            S.PAUSED,
            why,
            now,
            data={"exit_code": code, "resets_at": hit.resets_at, "auto_resume": auto},
            exit_code=code,
            log_offset=offset,
            pid=None,
            create_time=None,
            limit_resets_at=hit.resets_at,
        )
        self.table.live[runner.id].end_unrecorded = None
        self._set_identity(self.table.live[runner.id], None)
        log.info("paused: runner %s at %s's usage limit (%s)", runner.id, hit.agent, when)
        if auto:
            self._plan_resume(runner)

    def _plan_resume(self, runner: Runner) -> None:
        s = self.config.current  # the delay: clocks differ, and a reset is announced to the minute
        at = (runner.limit_resets_at or self.clock() + s.limit_retry) + s.limit_resume_delay
        if self.schedule_resume is not None:
            self.schedule_resume(runner.id, at)

    def resume_due(self, runner_id: int) -> None:
        """The scheduler's job at a limit's reset: resume the paused runner's session. When
        that is refused (a spent budget, the agent uninstalled), it stays paused and an event
        says why; when the DB refuses it, it is tried again a minute later."""
        live = self.table.live.get(runner_id)
        if live is None or live.state is not S.PAUSED or not self.tasks.accepting:
            return
        now = self.clock()
        try:
            self.resume(runner_id, now=now)
        except StorageError as exc:
            log.warning("paused: runner %s not resumed yet: %s", runner_id, exc.message)
            if self.schedule_resume is not None:
                self.schedule_resume(runner_id, now + 60.0)
        except ApiError as exc:
            project = self.projects.name_of(live.row.project_id)
            with self.writes.transaction():
                events.record(
                    events.RUNNER_RESUME_FAILED,
                    f"runner {runner_id} ({project}) could not resume after the limit",
                    ts=now,
                    severity="warning",
                    runner_id=runner_id,
                    project=project,
                    body=exc.message,
                )
            log.warning("paused: runner %s not resumed: %s", runner_id, exc.message)

    def resume(
        self,
        runner_id: int,
        prompt: str | None = None,
        mode: str | None = None,
        now: float | None = None,
    ) -> Runner:
        """Continue the runner's own agent session (``--resume <its id>``, never the most
        recent one): a paused runner at once, a finished one as a restart does."""
        now = self.clock() if now is None else now
        self.tasks.check_accepting()
        runner = self._current(runner_id)
        state = RunnerState(runner.state)
        profile = self.profiles.profile_or_none(runner.profile)
        if not runner.supervised:
            how = (
                f"stratavore-agent --profile {runner.profile} --resume {runner.session_id}"
                if profile and runner.session_id
                else "stratavore-agent"
            )
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner_id} ran in a terminal; resume it in one with `{how}`.",
            )
        if state not in FINISHED_STATES and state is not S.PAUSED:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner_id} is {state.value}; only a paused or finished runner can be "
                "resumed.",
            )
        if runner.session_id is None and profile is not None:
            self.learn_sessions()
        if profile is None or runner.session_id is None:
            why = "it has no profile" if profile is None else "its session id is not known yet"
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner_id} has no agent session to resume ({why}); restart it instead.",
            )
        mode = mode or (runner.mode if runner.mode in profiles.MODES else "interactive")
        prompt = prompt or (profiles.RESUME_PROMPT if mode == "batch" else None)
        plan = self.profiles.plan(
            profile,
            mode=mode,
            prompt=prompt,
            session_id=runner.session_id,
            resume=True,
            args=runner.extra_args or [],
        )
        argv = commands.resolve(plan.argv, runner.cwd, self.search_path)
        if self.launch_guard is not None:
            self.launch_guard(self.projects.name_of(runner.project_id), runner.profile, argv, now)
        self._start_again(
            runner,
            now,
            f"resumed session {runner.session_id}",
            command=argv,
            mode=mode,
            prompt=prompt if mode == "batch" else runner.prompt,
        )
        if state is S.PAUSED and self.cancel_resume is not None:
            self.cancel_resume(runner_id)
        log.info("resumed: runner %s session %s", runner_id, runner.session_id)
        return self.table.row(runner_id)

    def learn_sessions(self) -> int:
        """Give runners whose agent picks its own session id (Codex) the id the usage import
        attributed to them; how many learned one."""
        learned = queries.sessions_of_runners_without_one()
        if learned:
            with self.writes.transaction():
                for runner_id, session_id in learned.items():
                    queries.update_runner(runner_id, session_id=session_id)
            for runner_id, session_id in learned.items():
                if (live := self.table.live.get(runner_id)) is not None:
                    live.row.session_id = session_id
        return len(learned)

    # --- git worktrees --------------------------------------------------------------------------
    async def make_worktree(self, request: Launch) -> worktrees.Worktree | None:
        """The git worktree a launch asked for (or its profile gives by default), made in a
        worker thread: git takes its time, and the loop may be the GUI's."""
        profile = self.profiles.profile(request.profile)
        wanted = (
            request.worktree if request.worktree is not None else bool(profile and profile.worktree)
        )
        if not wanted:
            return None
        project = self.projects.named(request.project)
        name = f"{project.name}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(self.clock()))}"
        return await self._git(
            worktrees.create,
            project.path,
            paths.worktrees_dir(self.root),
            name,
            list(profile.setup_files) if profile else [],
        )

    async def ensure_worktree(self, runner_id: int) -> None:
        """Before a runner starts again: its worktree, removed when it ended without work, is
        made anew (same project, new branch), and the runner moved into it."""
        runner = self.table.row(runner_id)
        if not runner.worktree or os.path.isdir(runner.worktree["path"]):
            return
        old = worktrees.Worktree.from_json(runner.worktree)
        project = self.projects.by_id(runner.project_id)
        profile = self.profiles.profile_or_none(runner.profile)
        tree = await self._git(
            worktrees.create,
            project.path,
            Path(old.path).parent,
            Path(old.path).name,
            list(profile.setup_files) if profile else [],
        )
        values = {"worktree": tree.to_json(), "cwd": worktrees.cwd_in(tree, project.path)}
        try:
            with self.writes.transaction():
                queries.update_runner(runner_id, **values)
        except StorageError:
            await self.discard_worktree(tree)
            raise
        runner.worktree, runner.cwd = values["worktree"], values["cwd"]

    async def discard_worktree(self, tree: worktrees.Worktree) -> None:
        """A worktree made for a launch that was then refused (a budget, a cap)."""
        with contextlib.suppress(ApiError):
            await self._git(worktrees.finish, tree)

    async def _git(self, work: Callable[..., Any], *args: Any) -> Any:
        try:
            return await self.tasks.loop.run_in_executor(None, work, *args)
        except worktrees.WorktreeError as exc:
            raise ApiError(ErrorCode.INVALID, str(exc)) from None

    async def _end_worktree(self, runner_id: int, tree: worktrees.Worktree) -> None:
        """A runner with its own worktree ended: remove it, or keep it if it holds work and
        say where (an event)."""
        try:
            outcome = await self.tasks.loop.run_in_executor(None, worktrees.finish, tree)
        except worktrees.WorktreeError as exc:
            log.warning("worktree: runner %s: %s", runner_id, exc)
            return
        log.info("worktree: runner %s %s", runner_id, outcome.sentence)
        if outcome.kept:
            runner = self.table.row(runner_id)
            project = self.projects.name_of(runner.project_id)
            try:
                with self.writes.transaction():
                    events.record(
                        events.WORKTREE_KEPT,
                        f"runner {runner_id} ({project}) left work in its worktree",
                        ts=self.clock(),
                        runner_id=runner_id,
                        project=project,
                        body=outcome.sentence,
                        data={"path": tree.path, "branch": tree.branch, "commits": outcome.commits},
                    )
            except StorageError as exc:  # the log line above says where it is
                log.warning("worktree: runner %s: its event was not recorded: %s", runner_id, exc)

    # --- attention ------------------------------------------------------------------------------
    def _watch_attention(self, live: Live, now: float) -> None:
        """A (re)started agent run: its hooks or, failing them, the heuristic say what it
        does. Plain commands have no attention."""
        profile = self.profiles.profile_or_none(live.row.profile)
        live.hooked = False
        live.active_at, live.seen_offset = now, live.row.log_offset
        heuristic = profile is not None and not profiles.has_hooks(profile)
        live.idle_after = (profile.idle_after or profiles.DEFAULT_IDLE_AFTER) if heuristic else None

    def hook(
        self,
        runner_id: int,
        token: str,
        hook: HookIn,
        now: float | None = None,
        limit: limits.LimitHit | None = None,
    ) -> str | None:
        """A Claude Code hook of the runner: its attention changes (one event per change,
        never per hook call). Sub-agents' hooks only ever mean "working". ``limit``: the
        transcript showed a usage limit (looked for off the loop at Stop)."""
        now = self.clock() if now is None else now
        runner = self.table.runner_with_token(runner_id, token)
        live = self.table.live.get(runner_id)
        if live is None or live.state not in PROCESS_STATES:
            return runner.attention  # a late SessionEnd of a finished run: nothing to change
        live.hooked = True
        self.heartbeats.last_seen[runner_id] = now  # a hook is a sign of life too
        if hook.session_id and not hook.agent_id and hook.session_id != runner.session_id:
            # /clear starts a new session in the same process: resume continues that one
            with self.writes.transaction():
                queries.update_runner(runner_id, session_id=hook.session_id)
            runner.session_id = hook.session_id
        new, why = attention_of(hook)
        if limit is not None:
            self._report_limit(runner, limit, now)
        if new is not None:
            self._set_attention(runner, new, why, now, hook.hook_event_name)
        return runner.attention

    def _set_attention(
        self, runner: Runner, new: Attention, why: str, now: float, source: str
    ) -> None:
        """Change the runner's attention and write the event that reports it, in one
        transaction; the same value again is not a change."""
        old = runner.attention
        if old == new.value:
            return
        project = self.projects.name_of(runner.project_id)
        severity = ATTENTION_SEVERITY[new]
        if new is Attention.FINISHED_TURN and runner.mode == "batch":
            severity = "debug"  # a batch run's end is what its exit event reports
        with self.writes.transaction():
            queries.update_runner(runner.id, attention=new.value, attention_at=now)
            events.record(
                events.attention_type(new),
                f"runner {runner.id} ({project}) {events.ATTENTION_TITLES[new]}",
                ts=now,
                severity=severity,
                runner_id=runner.id,
                project=project,
                body=why,
                data={"attention": new.value, "previous": old, "source": source},
            )
        runner.attention, runner.attention_at = new.value, now
        log.info("attention: runner %s %s (%s)", runner.id, new.value, source)

    def limit_in_transcript(self, path: str, since: float | None) -> limits.LimitHit | None:
        """A usage limit at the end of a Claude Code transcript, written since the run started
        (a worker thread calls this at a Stop hook: the turn may have ended on the limit)."""
        if not path.endswith(".jsonl"):
            return None
        now = self.clock()
        return limits.scan_file_tail(Path(path), "claude", now, self.config.zone, 64 * 1024, since)

    def _report_limit(self, runner: Runner, hit: limits.LimitHit, now: float) -> None:
        """A live interactive session hit its limit: its process waits, the user is told
        when it resets (once per reset time)."""
        if runner.limit_resets_at == hit.resets_at and hit.resets_at is not None:
            return
        project, zone = self.projects.name_of(runner.project_id), self.config.zone
        with self.writes.transaction():
            queries.update_runner(runner.id, limit_resets_at=hit.resets_at)
            events.record(
                events.RUNNER_LIMIT,
                f"runner {runner.id} ({project}) hit {hit.agent}'s usage limit",
                ts=now,
                severity="warning",
                runner_id=runner.id,
                project=project,
                body=f"{hit.message} ({limits.describe_reset(hit.resets_at, now, zone)})",
                data={"resets_at": hit.resets_at},
            )
        runner.limit_resets_at = hit.resets_at

    def _heuristic_attention(self, live: Live, sample: Sample, now: float) -> None:
        """Agents without hooks (documented as a heuristic): output or CPU means working; no
        output and no CPU for ``idle_after`` seconds means idle."""
        if live.idle_after is None or live.hooked or live.state is not S.RUNNING:
            return
        runner = live.row
        if runner.log_offset != live.seen_offset or (sample.cpu_percent or 0.0) > BUSY_CPU:
            live.active_at, live.seen_offset = now, runner.log_offset
            if runner.attention in (None, Attention.IDLE.value):
                self._set_attention(
                    runner, Attention.WORKING, "output or CPU seen (heuristic)", now, "heuristic"
                )
        elif now - live.active_at >= live.idle_after and runner.attention != Attention.IDLE:
            quiet = now - live.active_at
            quiet = f"{quiet:.0f} s" if quiet < 120 else f"{quiet / 60:.0f} min"
            self._set_attention(
                runner, Attention.IDLE, f"no output and no CPU for {quiet} (heuristic)", now,
                "heuristic",
            )  # fmt: skip

    # --- heartbeats ---------------------------------------------------------------------------
    def heartbeat(
        self, runner_id: int, token: str, beat: Heartbeat, now: float | None = None
    ) -> None:
        now = self.clock() if now is None else now
        runner = self.table.runner_with_token(runner_id, token)
        live = self.table.live.get(runner_id)
        if live is None:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner_id} has ended ({runner.state}); its heartbeats are refused.",
            )
        self.heartbeats.record(runner_id, beat, now)
        if live.row.unresponsive:
            self._set_flag(live.row, False, "heartbeat received", now)
        if beat.exit_code is not None and not live.row.supervised:
            live.final_exit_code = beat.exit_code
            self.flush_heartbeats()
            self.on_exit(runner_id, beat.exit_code, now)

    # --- sweep --------------------------------------------------------------------------------
    async def sweep(self, now: float | None = None) -> None:
        """Sample CPU/RSS of every runner's tree, finish runners whose process is gone, and flag
        runners silent past the heartbeat TTL (or stopped by a signal) as unresponsive."""
        async with self._sweep_lock:  # the scheduled sweep and a first sample may overlap
            await self._sweep(self.clock() if now is None else now)

    async def _sweep(self, now: float) -> None:
        watched = {
            rid: live.identity
            for rid, live in self.table.live.items()
            if live.identity is not None
            and live.state in PROCESS_STATES
            and live.end_unrecorded is None
        }
        samples: dict[Identity, Sample] = await self.tasks.loop.run_in_executor(
            None, self.ops.sample, list(watched.values()), now
        )
        updates: dict[int, dict[str, Any]] = {}
        for runner_id, ident in watched.items():
            live = self.table.live.get(runner_id)
            if live is None or live.identity != ident:
                continue  # changed while we sampled
            sample = samples.get(ident)
            if sample is None:  # gone, or its pid now belongs to another program
                gone, code = self.ops.poll(ident)
                self._finish_gone(runner_id, code if gone else None, now)
                continue
            updates[runner_id] = {"cpu_percent": sample.cpu_percent, "rss_bytes": sample.rss_bytes}
            self._check_responsive(runner_id, live, sample, now)
            with contextlib.suppress(StorageError):  # not recorded: seen again next sweep
                self._heuristic_attention(live, sample, now)
        self.table.write_fields(updates)

    def _check_responsive(self, runner_id: int, live: Live, sample: Sample, now: float) -> None:
        last = self.heartbeats.last_seen.get(runner_id)
        silent_for = None if last is None else now - last
        if silent_for is not None and silent_for > self.config.current.heartbeat_ttl:
            problem = (
                f"no heartbeat for {silent_for:.0f} s (TTL {self.config.current.heartbeat_ttl:g} s)"
            )
        elif sample.stopped:
            problem = "its process is stopped (SIGSTOP or a debugger) and cannot progress"
        else:
            problem = None
        if problem and not live.row.unresponsive:
            self._set_flag(live.row, True, problem, now)
        elif problem is None and live.row.unresponsive and not sample.stopped and last is None:
            self._set_flag(live.row, False, "its process runs again", now)

    # --- reconcile at start -------------------------------------------------------------------
    def reconcile(self, now: float | None = None) -> None:
        """Take over the runners a previous supervisor left: adopt those whose exact process
        (pid + create time) still lives, finish the others from their exit-status file, or
        mark them lost."""
        now = self.clock() if now is None else now
        for runner in queries.runners_in(ACTIVE_STATES):
            state = RunnerState(runner.state)
            live = self.table.take_over(runner)
            if runner.last_heartbeat is not None:
                self.heartbeats.last_seen[runner.id] = runner.last_heartbeat
            if not runner.supervised:
                self.heartbeats.last_seen.setdefault(runner.id, now)
            if state is S.QUEUED:
                continue
            if state is S.BACKOFF:
                self._schedule_backoff(runner.id, (runner.next_start_at or now) - now)
                continue
            if state is S.PAUSED:
                profile = self.profiles.profile_or_none(runner.profile)
                if runner.resume_on_limit and profiles.can_resume(profile):
                    self._plan_resume(runner)
                continue
            ident = Identity(runner.pid, runner.create_time) if runner.pid else None
            if ident is not None and self.ops.is_alive(ident):
                self._set_identity(live, ident)
                self._watch_attention(live, now)
                if runner.supervised:
                    self.pump.track(
                        runner.id, paths.run_dir(self.root, runner.id), runner.log_offset
                    )
                log.info("adopted: runner %s pid %s (%s)", runner.id, ident.pid, state.value)
                if state is S.STOPPING:
                    self._begin_stop(runner.id, bool(runner.stop_force))
                elif state is S.STARTING:
                    self._schedule_promotion(runner, now)
                continue
            code = (
                self.ops.read_exit_file(paths.run_dir(self.root, runner.id) / EXIT_FILE)
                if (runner.supervised and ident is not None)
                else None
            )
            if code is not None:
                self._set_identity(live, ident)
                self.pump.track(runner.id, paths.run_dir(self.root, runner.id), runner.log_offset)
                self.on_exit(runner.id, code, now)
                continue
            if ident is None:
                why = "it was never seen running (the supervisor stopped while starting it)"
            elif self.ops.create_time(ident.pid) is not None:
                why = (
                    f"process {ident.pid} is now a different program (pid reused) and no "
                    "exit status was recorded"
                )
            else:
                why = "it ended while the supervisor was not running, exit status unknown"
            log.warning("lost: runner %s: %s", runner.id, why)
            if state is S.STOPPING:
                self.table.transition(
                    runner, S.STOPPED, f"stopped by user; {why}", now, ended_at=now
                )
            else:
                self.table.transition(runner, S.LOST, why, now, ended_at=now)
        self._dequeue(now)

    # --- periodic work --------------------------------------------------------------------------
    async def refresh_log(self, runner_id: int) -> None:
        """Pump one active runner's output into its log now (before the log is read)."""
        if runner_id in self.table.live and self.table.live[runner_id].row.supervised:
            with contextlib.suppress(KeyError):  # not spawned yet
                offset = await self.tasks.loop.run_in_executor(
                    None, functools.partial(self.pump.drain, runner_id, final=False)
                )
                self.table.write_fields({runner_id: {"log_offset": offset}})

    async def pump_logs(self) -> None:
        offsets = await self.tasks.loop.run_in_executor(None, self.pump.tick)
        self.table.write_fields({rid: {"log_offset": offset} for rid, offset in offsets.items()})

    def shutdown(self) -> None:
        """Stop accepting work; leave runners running for adoption (``stop_everything``
        first stops them)."""
        self.tasks.accepting = False
        for live in self.table.live.values():
            if live.timer:
                live.timer.cancel()
        if self._sample_timer:
            self._sample_timer.cancel()
        self.tasks.cancel()
        self.table.close()
        self.flush_heartbeats()
        self.table.write_fields({rid: {"log_offset": off} for rid, off in self.pump.tick().items()})
        for live in self.table.live.values():
            self._set_identity(live, None)
            if live.end_unrecorded is not None or live.stop_unrecorded is not None:
                # the next start reconciles it from its process and exit file, if it can
                log.warning(
                    "unrecorded: runner %s: its %s could not be written before the supervisor "
                    "stopped",
                    live.row.id,
                    "end" if live.end_unrecorded is not None else "stop",
                )

    # --- what the DB refused ---------------------------------------------------------------
    def _catch_up(self, live: Live) -> None:
        """Write what was seen of this runner while the DB refused writes, in the order it
        happened: the stop signal sent, then the end of its process. Raises
        :class:`StorageError` while the DB still refuses them."""
        if live.stop_unrecorded is not None:
            force, at = live.stop_unrecorded
            # STARTING/RUNNING -> STOPPING (its signal went out at the time)
            self.table.transition(
                live.row,
                S.STOPPING,
                "stop requested by user",
                at,
                stop_requested_at=at,
                stop_force=force,
            )
            live.stop_unrecorded = None
        if live.end_unrecorded is not None:
            self._record_end(live)

    def _retry_unwritten(self) -> None:
        """Write what the DB refused, oldest first, until it refuses again (then a second
        later once more); then start what waits in the queue."""
        self.table.write_fields({})
        for live in list(self.table.live.values()):
            if live.stop_unrecorded is not None or live.end_unrecorded is not None:
                try:
                    self._catch_up(live)
                except StorageError:
                    self.table.retry_later()
                    return
        self._dequeue(self.clock())
