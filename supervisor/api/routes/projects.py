"""The routes of projects, profiles and settings: what a runner is launched in and with."""

from __future__ import annotations

import time
from dataclasses import fields
from typing import Any, cast

from aiohttp import web

from supervisor.agents import profiles
from supervisor.api import schemas as sc
from supervisor.api.routes import ADMIN, Route
from supervisor.api.schemas import iso
from supervisor.api.wire import decode, flag_param, json_response
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.settings import LIVE, Settings, saved_settings
from supervisor.runners.manager import RunnerManager
from supervisor.storage import queries
from supervisor.storage.models import Profile, Project


class Projects:
    """Serves the projects, profiles and settings routes; the manager keeps the caches and
    the caps they change."""

    def __init__(self, manager: RunnerManager) -> None:
        self.manager = manager

    async def list_projects(self, request: web.Request) -> web.Response:
        active = queries.active_counts_by_project()
        rows = queries.list_projects(flag_param(request, "all"))
        return json_response([project_out(p, active.get(p.name, 0)) for p in rows])

    async def create_project(self, request: web.Request) -> web.Response:
        row = self.manager.create_project(await decode(request, sc.ProjectCreate))
        return json_response(project_out(row, 0), 201)

    async def get_project(self, request: web.Request) -> web.Response:
        row = self.manager.project(request.match_info["name"])
        return json_response(project_out(row, self.manager.active_count(row.id)))

    async def update_project(self, request: web.Request) -> web.Response:
        body = await decode(request, sc.ProjectUpdate)
        row = self.manager.set_project_cap(request.match_info["name"], body.max_runners)
        return json_response(project_out(row, self.manager.active_count(row.id)))

    async def archive_project(self, request: web.Request) -> web.Response:
        row = self.manager.archive_project(request.match_info["name"])
        return json_response(project_out(row, 0))

    async def list_profiles(self, request: web.Request) -> web.Response:
        return json_response([profile_out(p) for p in queries.list_profiles()])

    async def create_profile(self, request: web.Request) -> web.Response:
        body = await decode(request, sc.ProfileCreate)
        if queries.profile_exists(body.name):
            raise ApiError(ErrorCode.ALREADY_EXISTS, f"Profile '{body.name}' already exists.")
        row = queries.create_profile(body.name, profiles.profile_fields(body), time.time())
        self.manager.forget_profile(body.name)
        return json_response(profile_out(row), 201)

    async def get_profile(self, request: web.Request) -> web.Response:
        return json_response(profile_out(queries.profile_by_name(request.match_info["name"])))

    async def delete_profile(self, request: web.Request) -> web.Response:
        row = queries.profile_by_name(request.match_info["name"])
        if row.builtin:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Profile '{row.name}' is built in; copy it under a new name instead.",
            )
        queries.delete_profile(row)
        self.manager.forget_profile(row.name)
        return json_response(profile_out(row))

    def setting_out(self, key: str, saved: dict[str, Any]) -> sc.SettingValue:
        return sc.SettingValue(
            key=key,
            value=getattr(self.manager.settings, key),
            saved=saved.get(key),
            default=getattr(Settings(), key),
            applies="now" if key in LIVE else "at next start",
        )

    async def list_settings(self, request: web.Request) -> web.Response:
        saved = saved_settings()
        return json_response([self.setting_out(f.name, saved) for f in fields(Settings)])

    async def put_setting(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        body = await decode(request, sc.SettingUpdate)
        self.manager.set_setting(key, body.value)
        return json_response(self.setting_out(key, saved_settings()))


def project_out(row: Project, active: int) -> sc.Project:
    """A project as the API shows it, with its ``active`` runners."""
    return sc.Project(
        id=row.id,
        name=row.name,
        path=row.path,
        archived=row.archived,
        max_runners=row.max_runners,
        active_runners=active,
        created_at=iso(row.created_at),
    )


def profile_out(row: Profile) -> sc.Profile:
    """A profile as the API shows it."""
    return sc.Profile(
        name=row.name,
        command=row.command,
        description=row.description,
        restart=cast(sc.RestartPolicyName, row.restart),  # as the API checked it
        expected_exit_codes=row.expected_exit_codes,
        env=row.env,
        builtin=row.builtin,
        agent=row.agent,
        binaries=row.binaries or [],
        batch=row.batch,
        resume=row.resume,
        resume_batch=row.resume_batch,
        setup_files=row.setup_files or [],
        worktree=bool(row.worktree),
        resume_on_limit=row.resume_on_limit,
        idle_after=row.idle_after,
        hooks=profiles.has_hooks(row),
        account=profiles.account_of(row),
    )


# The routes, in two groups: the table (supervisor.api.app) places each where it belongs.
PROJECTS_AND_PROFILES = (
    Route("get", "/api/v1/projects", Projects.list_projects,
          "List projects (?all=1 includes archived)", ADMIN, response=list[sc.Project]),
    Route("post", "/api/v1/projects", Projects.create_project, "Create a project", ADMIN,
          body=sc.ProjectCreate, response=sc.Project),
    Route("get", "/api/v1/projects/{name}", Projects.get_project, "Get a project", ADMIN,
          response=sc.Project),
    Route("patch", "/api/v1/projects/{name}", Projects.update_project,
          "Change a project's own runner cap", ADMIN, body=sc.ProjectUpdate,
          response=sc.Project),
    Route("post", "/api/v1/projects/{name}/archive", Projects.archive_project,
          "Archive a project", ADMIN, response=sc.Project),
    Route("get", "/api/v1/profiles", Projects.list_profiles, "List profiles", ADMIN,
          response=list[sc.Profile]),
    Route("post", "/api/v1/profiles", Projects.create_profile, "Create a user profile", ADMIN,
          body=sc.ProfileCreate, response=sc.Profile),
    Route("get", "/api/v1/profiles/{name}", Projects.get_profile, "Get a profile", ADMIN,
          response=sc.Profile),
    Route("delete", "/api/v1/profiles/{name}", Projects.delete_profile,
          "Delete a user profile", ADMIN, response=sc.Profile),
)  # fmt: skip
SETTINGS = (
    Route("get", "/api/v1/settings", Projects.list_settings, "Settings and their defaults",
          ADMIN, response=list[sc.SettingValue]),
    Route("put", "/api/v1/settings/{key}", Projects.put_setting, "Change a setting", ADMIN,
          body=sc.SettingUpdate, response=sc.SettingValue),
)  # fmt: skip
