"""The projects runners belong to, as the running supervisor keeps them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.api.schemas import ProjectCreate
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.storage import queries
from supervisor.storage.models import Project
from supervisor.storage.writes import StorageError, Writes


@dataclass(eq=False, repr=False)
class ProjectBook:
    """Projects by id and by name, cached (projects change only through here), created and
    changed through the write gate: committed first, then kept."""

    writes: Writes
    clock: Callable[[], float]
    _projects: dict[int, Project] = field(default_factory=dict, init=False)

    def by_id(self, project_id: int) -> Project:
        if project_id not in self._projects:
            self._projects = {p.id: p for p in queries.list_projects(include_archived=True)}
        return self._projects[project_id]

    def name_of(self, project_id: int) -> str:
        return self.by_id(project_id).name

    def named(self, name: str) -> Project:
        """The project called ``name`` (404 when there is none)."""
        for project in self._projects.values():
            if project.name == name:
                return project
        project = queries.project_by_name(name)
        self._projects[project.id] = project
        return project

    def create(self, request: ProjectCreate, now: float | None = None) -> Project:
        path = Path(request.path)
        if not path.is_absolute():
            raise ApiError(
                ErrorCode.INVALID, f"Project path must be absolute, got {request.path!r}."
            )
        if not path.is_dir():
            raise ApiError(ErrorCode.INVALID, f"Folder {request.path} does not exist.")
        if queries.project_exists(request.name):
            raise ApiError(ErrorCode.ALREADY_EXISTS, f"Project '{request.name}' already exists.")
        with self.writes.transaction():
            project = queries.create_project(
                request.name,
                str(path.resolve()),
                request.max_runners,
                self.clock() if now is None else now,
            )
        self._projects[project.id] = project
        return project

    def save(self, project: Project, **values: Any) -> None:
        """Change a cached project's fields; they are put back if the DB refuses them."""
        before = {name: getattr(project, name) for name in values}
        for name, value in values.items():
            setattr(project, name, value)
        try:
            with self.writes.transaction():
                queries.save_project(project)
        except StorageError:
            for name, value in before.items():
                setattr(project, name, value)
            raise
