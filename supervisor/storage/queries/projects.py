"""Projects and agent profiles, by name."""

from __future__ import annotations

from typing import Any

import peewee as pw

from supervisor.core.errors import not_found
from supervisor.storage.models import Profile, Project


def project_by_name(name: str) -> Project:
    try:
        return Project.get(Project.name == name)
    except pw.DoesNotExist:  # the base of Project.DoesNotExist, which the stubs lack
        raise not_found(f"Project '{name}'") from None


def project_exists(name: str) -> bool:
    return Project.select().where(Project.name == name).exists()


def list_projects(include_archived: bool = False) -> list[Project]:
    query = Project.select().order_by(Project.name)
    if not include_archived:
        query = query.where(Project.archived == False)  # noqa: E712 (peewee expression)
    return list(query)


def create_project(name: str, path: str, max_runners: int | None, now: float) -> Project:
    return Project.create(name=name, path=path, max_runners=max_runners, created_at=now)


def save_project(project: Project) -> None:
    """Write a project's changed fields."""
    project.save()


def project_containing(path: str) -> Project | None:
    """The non-archived project whose folder is ``path`` or contains it (deepest wins)."""
    best = None
    for project in list_projects():
        base = project.path.rstrip("/\\")
        if (path == base or path.startswith(base + "/") or path.startswith(base + "\\")) and (
            best is None or len(base) > len(best.path)
        ):
            best = project
    return best


def profile_by_name(name: str) -> Profile:
    try:
        return Profile.get(Profile.name == name)
    except pw.DoesNotExist:  # the base of Profile.DoesNotExist, which the stubs lack
        raise not_found(f"Profile '{name}'") from None


def list_profiles() -> list[Profile]:
    return list(Profile.select().order_by(Profile.builtin.desc(), Profile.name))


def profile_exists(name: str) -> bool:
    return Profile.select().where(Profile.name == name).exists()


def create_profile(name: str, fields: dict[str, Any], now: float) -> Profile:
    """A new user profile ``name`` of ``fields`` (see ``profiles.profile_fields``)."""
    return Profile.create(**fields, name=name, builtin=False, created_at=now)


def delete_profile(row: Profile) -> None:
    row.delete_instance()
