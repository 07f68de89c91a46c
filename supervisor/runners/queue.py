"""The concurrency caps and the queue behind them: per project (5, or the project's own) and
overall (20). A launch or a start again over a cap waits, FIFO, and starts when a slot frees."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from supervisor.agents.profilebook import ProfileBook
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.settings import LiveSettings
from supervisor.core.states import RunnerState
from supervisor.runners.projects import ProjectBook
from supervisor.runners.spawner import Spawner
from supervisor.runners.table import RunnerTable
from supervisor.storage.models import Project, Runner
from supervisor.storage.writes import StorageError

log = logging.getLogger("stratavore.runners")
S = RunnerState


@dataclass(eq=False, repr=False)
class Queue:
    """Who may hold a slot, the sentence that says why not, and starting the queued runners,
    oldest first, while the caps allow."""

    table: RunnerTable
    projects: ProjectBook
    profiles: ProfileBook
    spawner: Spawner
    settings: LiveSettings
    clock: Callable[[], float]

    def project_cap(self, project: Project) -> int:
        return project.max_runners or self.settings.current.max_runners_per_project

    def has_slot(self, project: Project) -> bool:
        slots = self.table.slots
        return slots.total() < self.settings.current.max_runners_global and slots[
            project.id
        ] < self.project_cap(project)

    def cap_sentence(self, project: Project) -> str:
        cap, slots = self.project_cap(project), self.table.slots
        if slots[project.id] >= cap:
            how = "stratavore set max_runners_per_project N" + (
                f" --project {project.name}" if project.max_runners else ""
            )
            return (
                f"Project '{project.name}' already has {slots[project.id]} of {cap} "
                f"runners; stop one or raise the cap with `{how}`."
            )
        return (
            f"{slots.total()} of {self.settings.current.max_runners_global} runners are "
            "active; stop one or raise the cap with `stratavore set max_runners_global N`."
        )

    def dequeue(self, now: float) -> None:
        """Start queued runners, oldest first, while their caps allow."""
        for runner in list(self.table.queued.values()):
            if runner.id not in self.table.queued:
                continue  # started meanwhile: an earlier one could not start and freed its slot
            if self.table.slots.total() >= self.settings.current.max_runners_global:
                break
            if self.has_slot(self.projects.by_id(runner.project_id)):
                try:
                    # QUEUED -> STARTING
                    self.table.transition(runner, S.STARTING, None, now, started_at=now)
                except StorageError:  # stays queued; tried again soon
                    self.table.retry_later()
                    return
                self.spawner.spawn(runner, now)

    def start_again(self, runner: Runner, now: float, why: str, **fields: Any) -> None:
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
        if self.has_slot(project):
            # STOPPED/EXITED/FAILED/FATAL/LOST -> STARTING
            self.table.transition(runner, S.STARTING, why, now, started_at=now, **reset)
            self.spawner.spawn(runner, now)
        else:
            self.table.transition(
                runner,
                S.QUEUED,
                f"{why}; {self.cap_sentence(project)}",
                now,
                queued_at=now,
                **reset,
            )

    # --- projects and their caps ------------------------------------------------------------
    def set_project_cap(self, name: str, max_runners: int | None) -> Project:
        """Change a project's own cap (None: the global setting); queued runners may start."""
        project = self.projects.named(name)
        self.projects.save(project, max_runners=max_runners)
        self.dequeue(self.clock())
        return project

    def archive_project(self, name: str) -> Project:
        """Archive a project without active runners (they hold it: 409)."""
        project = self.projects.named(name)
        active = self.table.active_count(project.id)
        if active:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Project '{project.name}' has {active} active runners; stop them first.",
            )
        self.projects.save(project, archived=True)
        return project
