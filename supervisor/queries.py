"""Named queries: callers never build peewee queries inline."""

from __future__ import annotations

from collections.abc import Iterable

import peewee as pw

from supervisor.errors import not_found
from supervisor.states import ACTIVE_STATES, PROCESS_STATES, SLOT_STATES, RunnerState
from supervisor.store import Event, Profile, Project, Runner


def project_by_name(name: str) -> Project:
    try:
        return Project.get(Project.name == name)
    except Project.DoesNotExist:
        raise not_found(f"Project '{name}'") from None


def list_projects(include_archived: bool = False) -> list[Project]:
    query = Project.select().order_by(Project.name)
    if not include_archived:
        query = query.where(Project.archived == False)  # noqa: E712 (peewee expression)
    return list(query)


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
    except Profile.DoesNotExist:
        raise not_found(f"Profile '{name}'") from None


def list_profiles() -> list[Profile]:
    return list(Profile.select().order_by(Profile.builtin.desc(), Profile.name))


def runner_by_id(runner_id: int) -> Runner:
    try:
        return Runner.get_by_id(runner_id)
    except Runner.DoesNotExist:
        raise not_found(f"Runner {runner_id}") from None


def list_runners(project: Project | None = None, include_finished: bool = False) -> list[Runner]:
    query = Runner.select().order_by(Runner.id)
    if project is not None:
        query = query.where(Runner.project == project)
    if not include_finished:
        query = query.where(Runner.state.in_(ACTIVE_STATES))
    return list(query)


def runners_in(states: Iterable[RunnerState]) -> list[Runner]:
    return list(Runner.select().where(Runner.state.in_(list(states))).order_by(Runner.id))


def process_runners() -> list[Runner]:
    """Runners whose process should exist."""
    return runners_in(PROCESS_STATES)


def queued_runners() -> list[Runner]:
    return list(
        Runner.select()
        .where(Runner.state == RunnerState.QUEUED)
        .order_by(Runner.queued_at, Runner.id)
    )


def slot_counts() -> tuple[int, dict[int, int]]:
    """Runners holding a slot: (global count, {project id: count})."""
    rows = (
        Runner.select(Runner.project, pw.fn.COUNT(Runner.id))
        .where(Runner.state.in_(SLOT_STATES))
        .group_by(Runner.project)
        .tuples()
    )
    per_project = {project_id: count for project_id, count in rows}
    return sum(per_project.values()), per_project


def counts_by_state() -> dict[str, int]:
    rows = Runner.select(Runner.state, pw.fn.COUNT(Runner.id)).group_by(Runner.state).tuples()
    counts = {state.value: 0 for state in RunnerState}
    counts.update(dict(rows))
    return counts


def active_counts_by_project() -> dict[str, int]:
    rows = (
        Project.select(Project.name, pw.fn.COUNT(Runner.id))
        .join(
            Runner,
            pw.JOIN.LEFT_OUTER,
            on=((Runner.project == Project.id) & Runner.state.in_(ACTIVE_STATES)),
        )
        .where(Project.archived == False)  # noqa: E712
        .group_by(Project.name)
        .tuples()
    )
    return dict(rows)


def project_names() -> dict[int, str]:
    return dict(Project.select(Project.id, Project.name).tuples())


def events_since(since: int, limit: int) -> list[Event]:
    return list(Event.select().where(Event.id > since).order_by(Event.id).limit(limit))
