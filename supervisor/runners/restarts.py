"""Runs started again: a restart runs the command line from the top (a running runner is
stopped first), a resume continues the agent's own session (``--resume <its id>``, never the
most recent one), by the user or by the scheduler at a provider limit's reset."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from supervisor.agents import commands, profiles
from supervisor.agents.profilebook import ProfileBook
from supervisor.core import events
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.states import FINISHED_STATES, RunnerState
from supervisor.runners.exits import Exits
from supervisor.runners.launcher import Launcher
from supervisor.runners.pausing import Pauses
from supervisor.runners.projects import ProjectBook
from supervisor.runners.queue import Queue
from supervisor.runners.stopper import Stopper
from supervisor.runners.table import RunnerTable
from supervisor.runners.tasks import Tasks
from supervisor.runners.workspace import Workspace
from supervisor.storage import queries
from supervisor.storage.models import Profile, Runner
from supervisor.storage.writes import StorageError, Writes

log = logging.getLogger("stratavore.runners")
S = RunnerState


@dataclass(eq=False, repr=False)
class Restarts:
    """Restart and resume, and the session ids they need."""

    table: RunnerTable
    projects: ProjectBook
    profiles: ProfileBook
    queue: Queue
    exits: Exits
    stopper: Stopper
    pauses: Pauses
    launcher: Launcher
    workspace: Workspace
    writes: Writes
    tasks: Tasks
    search_path: str
    clock: Callable[[], float]
    # Reads what is new in the agents' logs (the usage import): a run whose agent picks its
    # own session id learns it there. Without it (a bare manager) a resume goes without.
    import_usage: Callable[[], Awaitable[object]] | None = field(default=None, init=False)

    async def restart(self, runner_id: int, now: float | None = None) -> Runner:
        """Start the runner again from the top (a running one is stopped first, then started);
        its worktree, removed when it ended without work, is made anew first."""
        await self.workspace.ensure(runner_id)
        return self._restart(runner_id, now)

    def _restart(self, runner_id: int, now: float | None) -> Runner:
        now = self.clock() if now is None else now
        self.tasks.check_accepting()
        runner = self.exits.current(runner_id)
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
            self.queue.start_again(runner, now, "restarted by user")
            if state is S.PAUSED:
                self.pauses.unplan_resume(runner_id)
        elif state is S.BACKOFF:
            timer = self.table.live[runner_id].timer
            self.exits.start_from_backoff(runner)  # refused: it stays in backoff, its timer set
            if timer is not None:
                timer.cancel()
        else:
            if state is not S.STOPPING:
                self.stopper.stop(runner_id, now=now)
            self.table.live[runner_id].restart_after_stop = True
        return self.table.row(runner_id)

    async def resume(
        self,
        runner_id: int,
        prompt: str | None = None,
        mode: str | None = None,
        now: float | None = None,
    ) -> Runner:
        """Continue the runner's own agent session (``--resume <its id>``, never the most
        recent one): a paused runner at once, a finished one as a restart does. A run whose
        session id is not known yet reads the agents' logs first (a Codex run learns it from
        the usage import); its worktree is made anew if it was removed."""
        row = self.table.row(runner_id)
        if row.session_id is None and row.profile is not None and self.import_usage is not None:
            await self.import_usage()
        await self.workspace.ensure(runner_id)
        return self._resume(runner_id, prompt, mode, now)

    def _resume(
        self, runner_id: int, prompt: str | None, mode: str | None, now: float | None
    ) -> Runner:
        now = self.clock() if now is None else now
        self.tasks.check_accepting()
        runner = self.exits.current(runner_id)
        state = RunnerState(runner.state)
        profile = self._resumable(runner, state)
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
        project = self.projects.name_of(runner.project_id)
        self.launcher.check_guard(project, runner.profile, argv, now)
        self.queue.start_again(
            runner,
            now,
            f"resumed session {runner.session_id}",
            command=argv,
            mode=mode,
            prompt=prompt if mode == "batch" else runner.prompt,
        )
        if state is S.PAUSED:
            self.pauses.unplan_resume(runner_id)
        log.info("resumed: runner %s session %s", runner_id, runner.session_id)
        return self.table.row(runner_id)

    def _resumable(self, runner: Runner, state: RunnerState) -> Profile:
        """The profile that resumes the runner's session, or 409 saying why it cannot be."""
        profile = self.profiles.profile_or_none(runner.profile)
        if not runner.supervised:
            how = (
                f"stratavore-agent --profile {runner.profile} --resume {runner.session_id}"
                if profile and runner.session_id
                else "stratavore-agent"
            )
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner.id} ran in a terminal; resume it in one with `{how}`.",
            )
        if state not in FINISHED_STATES and state is not S.PAUSED:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner.id} is {state.value}; only a paused or finished runner can be "
                "resumed.",
            )
        if runner.session_id is None and profile is not None:
            self.learn_sessions()
        if profile is None or runner.session_id is None:
            why = "it has no profile" if profile is None else "its session id is not known yet"
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner.id} has no agent session to resume ({why}); restart it instead.",
            )
        return profile

    def resume_due(self, runner_id: int) -> None:
        """The scheduler's job at a limit's reset: resume the paused runner's session. When
        that is refused (a spent budget, the agent uninstalled), it stays paused and an event
        says why; when the DB refuses it, it is tried again a minute later."""
        live = self.table.live.get(runner_id)
        if live is None or live.state is not S.PAUSED or not self.tasks.accepting:
            return
        now = self.clock()
        try:
            self._resume(runner_id, None, None, now)
        except StorageError as exc:
            log.warning("paused: runner %s not resumed yet: %s", runner_id, exc.message)
            self.pauses.resume_later(runner_id, now + 60.0)
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
