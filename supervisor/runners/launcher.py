"""New runs: launched through the API (a profile's plan or a command line, in its own git
worktree if asked, started now or queued behind a cap), or registered by stratavore-agent (a
process started in a terminal)."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from supervisor.agents import commands
from supervisor.agents.profilebook import ProfileBook
from supervisor.agents.profiles import Plan
from supervisor.api.schemas import Launch, Register
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.settings import LiveSettings
from supervisor.core.states import RunnerState
from supervisor.runners import worktrees
from supervisor.runners.heartbeats import HeartbeatBook
from supervisor.runners.process import ProcessOps
from supervisor.runners.procinfo import Identity
from supervisor.runners.projects import ProjectBook
from supervisor.runners.queue import Queue
from supervisor.runners.spawner import Spawner
from supervisor.runners.table import RunnerTable
from supervisor.runners.tasks import Tasks
from supervisor.runners.tokens import hash_token
from supervisor.runners.workspace import Workspace
from supervisor.storage import queries
from supervisor.storage.models import Profile, Project, Runner

log = logging.getLogger("stratavore.runners")
S = RunnerState
# Called with (project name, profile, command, now) before a launch or a resume; raises
# ApiError to refuse it (the usage service checks budgets here).
LaunchGuard = Callable[[str, str | None, list[str], float], None]


@dataclass
class Launching:
    """One launch, checked: what was asked, its project and profile, the command line it runs
    (the profile's plan it came from, if any) and what the profile says about restarts, exit
    codes and the environment."""

    request: Launch
    project: Project
    profile: Profile | None
    argv: list[str]
    plan: Plan | None
    restart: str | None
    expected: list[int]
    env: dict[str, str]
    extra: list[str]  # the arguments given after the profile's own


@dataclass(eq=False, repr=False)
class Launcher:
    """Creates runners: launched (started now or queued) or registered."""

    table: RunnerTable
    projects: ProjectBook
    profiles: ProfileBook
    queue: Queue
    spawner: Spawner
    workspace: Workspace
    heartbeats: HeartbeatBook
    ops: ProcessOps
    settings: LiveSettings
    tasks: Tasks
    search_path: str
    clock: Callable[[], float]
    guards: list[LaunchGuard] = field(default_factory=list, init=False)

    def check_guard(self, project: str, profile: str | None, argv: list[str], now: float) -> None:
        """Refuse a launch or a resume a guard refuses (a spent budget, local or team's)."""
        for guard in self.guards:
            guard(project, profile, argv, now)

    # --- launch ------------------------------------------------------------------------------
    async def launch(self, request: Launch, now: float | None = None) -> Runner:
        """Create a runner and start it, or queue it behind a full cap. With a profile, its
        template gives the command line (a new session's id chosen here, for agents that take
        one). A git worktree the launch or its profile asks for is made once everything else
        has been checked (off the loop: git takes its time), becomes the runner's working
        folder, and is removed again when the launch is refused after all."""
        profile = self.profiles.profile(request.profile)
        self.tasks.check_accepting()
        project = self.projects.named(request.project)
        self._check_project(project)
        launching = self._prepare(request, project, profile)
        self.check_guard(project.name, request.profile, launching.argv, self._now(now))
        self._check_cap(launching)  # before a worktree is made for nothing
        tree = await self.workspace.make(project, profile, request.worktree)
        try:
            self.tasks.check_accepting()  # the supervisor may have begun to stop meanwhile
            return self._create(launching, tree, self._now(now))
        except ApiError:
            if tree is not None:
                await self.workspace.discard(tree)
            raise

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    def _check_cap(self, launching: Launching) -> None:
        project = launching.project
        if launching.request.no_queue and not self.queue.has_slot(project):
            raise ApiError(ErrorCode.CAP_REACHED, self.queue.cap_sentence(project))

    def _create(
        self, launching: Launching, worktree: worktrees.Worktree | None, now: float
    ) -> Runner:
        """The runner, written in one transition: started now, or queued behind a cap."""
        self._check_cap(launching)  # a slot may have been taken while git worked
        project = launching.project
        state = S.STARTING if self.queue.has_slot(project) else S.QUEUED
        runner = self._new_runner(launching, worktree, now)
        if state is S.QUEUED:
            self.table.transition(
                runner, state, self.queue.cap_sentence(project), now, queued_at=now
            )
        else:
            self.table.transition(runner, state, None, now, started_at=now)
        if state is S.STARTING:
            self.spawner.spawn(runner, now)
        else:
            log.info("queued: runner %s (%s)", runner.id, runner.reason)
        return runner

    @staticmethod
    def _check_project(project: Project) -> None:
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

    def _prepare(self, request: Launch, project: Project, profile: Profile | None) -> Launching:
        """The launch, checked: its command line from its profile's plan, or the command given."""
        restart: str | None = request.restart  # the launch's, else its profile's
        expected, env = [0], dict(request.env)
        extra = list(request.command or [])
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
        return Launching(request, project, profile, argv, plan, restart, expected, env, extra)

    def _new_runner(
        self, launching: Launching, worktree: worktrees.Worktree | None, now: float
    ) -> Runner:
        """The launch's row, not yet written (its first transition inserts it)."""
        s, plan = self.settings.current, launching.plan
        request, project = launching.request, launching.project
        return Runner(
            project=project,
            profile=request.profile,
            command=launching.argv,
            cwd=worktrees.cwd_in(worktree, project.path) if worktree else project.path,
            env=launching.env,
            state=None,
            restart=launching.restart or "never",
            expected_exit_codes=launching.expected,
            start_secs=s.start_secs,
            max_retries=s.max_retries,
            backoff_initial=s.backoff_initial,
            backoff_max=s.backoff_max,
            created_at=now,
            token_hash="",
            mode=plan.mode if plan else "command",
            prompt=request.prompt,
            session_id=plan.session_id if plan else None,
            extra_args=launching.extra if plan else [],
            resume_on_limit=self._resume_on_limit(launching.profile, request.resume_on_limit, plan),
            worktree=worktree.to_json() if worktree else None,
        )

    @staticmethod
    def _resume_on_limit(profile: Profile | None, asked: bool | None, plan: Plan | None) -> bool:
        """Whether a run paused at a provider limit resumes by itself at the reset: as asked,
        else as its profile says, else for batch runs (nobody is at an interactive one)."""
        if plan is None:
            return False
        if asked is not None:
            return asked
        if profile is not None and profile.resume_on_limit is not None:
            return bool(profile.resume_on_limit)
        return plan.mode == "batch"

    # --- register ----------------------------------------------------------------------------
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
        project = self._project_of(request)
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
        self.spawner.watch(self.table.live[runner.id], Identity(request.pid, created))
        self.heartbeats.last_seen[runner.id] = now  # the TTL also covers a silent registrant
        log.info("adopted: runner %s pid %s registered by stratavore-agent", runner.id, request.pid)
        return runner, token

    def _project_of(self, request: Register) -> Project:
        """The project named, or the one whose folder holds the process's working folder."""
        if request.project:
            return self.projects.named(request.project)
        found = queries.project_containing(os.path.realpath(request.cwd))
        if found is None:
            raise ApiError(
                ErrorCode.INVALID,
                f"No project contains {request.cwd}; pass --project NAME or create one "
                "with `stratavore new NAME --path DIR`.",
            )
        return found
