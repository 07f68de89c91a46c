"""The runner side of git worktrees (:mod:`.worktrees` is the git side): one made for a
launch that asks for it, made anew before a runner starts again, and removed when its runner
ends without work in it (or kept, and an event says where). Git runs in worker threads: it
takes its time, and the loop may be the GUI's."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.agents.profilebook import ProfileBook
from supervisor.core import events, paths
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.runners import worktrees
from supervisor.runners.projects import ProjectBook
from supervisor.runners.table import Live, RunnerTable
from supervisor.runners.tasks import Tasks
from supervisor.storage import queries
from supervisor.storage.models import Profile, Project
from supervisor.storage.writes import StorageError, Writes

log = logging.getLogger("stratavore.runners")


@dataclass(eq=False, repr=False)
class Workspace:
    """Runners' own worktrees: made, made again, discarded, and ended with their runner."""

    root: Path
    table: RunnerTable
    projects: ProjectBook
    profiles: ProfileBook
    writes: Writes
    tasks: Tasks
    clock: Callable[[], float]

    async def make(
        self, project: Project, profile: Profile | None, asked: bool | None
    ) -> worktrees.Worktree | None:
        """The git worktree a launch asked for (``asked``), or its profile gives by default."""
        wanted = asked if asked is not None else bool(profile and profile.worktree)
        if not wanted:
            return None
        name = f"{project.name}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(self.clock()))}"
        return await self._git(
            worktrees.create,
            project.path,
            paths.worktrees_dir(self.root),
            name,
            list(profile.setup_files) if profile else [],
        )

    async def ensure(self, runner_id: int) -> None:
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
            await self.discard(tree)
            raise
        runner.worktree, runner.cwd = values["worktree"], values["cwd"]

    async def discard(self, tree: worktrees.Worktree) -> None:
        """A worktree made for a launch that was then refused (a budget, a cap)."""
        with contextlib.suppress(ApiError):
            await self._git(worktrees.finish, tree)

    async def _git(self, work: Callable[..., Any], *args: Any) -> Any:
        try:
            return await self.tasks.loop.run_in_executor(None, work, *args)
        except worktrees.WorktreeError as exc:
            raise ApiError(ErrorCode.INVALID, str(exc)) from None

    def runner_left(self, live: Live) -> None:
        """A runner reached an end state: its worktree, if it has one, is ended soon."""
        runner = live.row
        if runner.worktree:
            tree = worktrees.Worktree.from_json(runner.worktree)
            self.tasks.soon(functools.partial(self._end, runner.id, tree))

    async def _end(self, runner_id: int, tree: worktrees.Worktree) -> None:
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
