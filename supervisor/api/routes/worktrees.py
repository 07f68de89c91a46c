"""The routes that review a runner's own git worktree: what it changed (files with +/- counts
and the unified diff), merged into the branch it started from, or discarded. The git work is
:mod:`supervisor.runners.review`'s, in a worker thread, one operation per repository at a
time; the CLI and the tray app both come here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from supervisor.api import schemas as sc
from supervisor.api.routes import ADMIN, Route
from supervisor.api.wire import id_param, json_response
from supervisor.core import events
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.states import ACTIVE_STATES
from supervisor.runners import review, worktrees
from supervisor.runners.manager import RunnerManager
from supervisor.storage.models import Runner
from supervisor.storage.writes import StorageError

log = logging.getLogger("stratavore")
T = TypeVar("T")


class Worktrees:
    """Serves the review routes of runners launched with their own worktree."""

    def __init__(self, manager: RunnerManager) -> None:
        self.manager = manager
        self._locks: dict[str, asyncio.Lock] = {}  # by repository: one git operation at a time

    def _tree(self, runner_id: int) -> tuple[Runner, worktrees.Worktree]:
        row = self.manager.row(runner_id)  # 404 for an unknown runner
        if not row.worktree:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner_id} has no worktree of its own; launch with --worktree to "
                "review an agent's changes before they reach your branch.",
            )
        return row, worktrees.Worktree.from_json(row.worktree)

    async def _git(self, tree: worktrees.Worktree, work: Callable[..., T], *args: Any) -> T:
        """``work`` in a worker thread, alone on its repository; a refusal is a 409."""
        lock = self._locks.setdefault(tree.repo, asyncio.Lock())
        async with lock:
            try:
                return await asyncio.get_running_loop().run_in_executor(None, work, *args)
            except worktrees.WorktreeError as exc:
                raise ApiError(ErrorCode.CONFLICT, _sentence(str(exc))) from None

    def _title(self, row: Runner) -> str:
        return f"runner {row.id} ({self.manager.project_name(row.project_id)})"

    def _record(self, row: Runner, kind: str, title: str, body: str, data: dict) -> None:
        """The event of a merge or a discard (done in git already: a refused write is only
        logged)."""
        project = self.manager.project_name(row.project_id)
        try:
            with self.manager.writes.transaction():
                events.record(kind, title, ts=self.manager.clock(), runner_id=row.id,
                              project=project, body=body, data=data)  # fmt: skip
        except StorageError as exc:
            log.warning("worktree: runner %s: its event was not recorded: %s", row.id, exc)

    async def diff(self, request: web.Request) -> web.Response:
        runner_id = id_param(request)
        _row, tree = self._tree(runner_id)
        changes = await self._git(tree, review.diff, tree)
        return json_response(
            sc.Changes(
                runner_id=runner_id,
                path=tree.path,
                branch=changes.branch,
                base_branch=changes.base_branch,
                base=changes.base,
                commits=changes.commits,
                uncommitted=changes.uncommitted,
                files=[_file(f) for f in changes.files],
                patch=changes.patch,
                truncated=changes.truncated,
            )
        )

    async def merge(self, request: web.Request) -> web.Response:
        runner_id = id_param(request)
        row, tree = self._tree(runner_id)
        merged = await self._git(tree, review.merge, tree, self._title(row))
        base = tree.base_branch or ""
        self._record(row, events.WORKTREE_MERGED, f"{self._title(row)}: {merged.sentence}",
                     merged.sentence, {"branch": tree.branch, "base_branch": base,
                                       "commit": merged.commit})  # fmt: skip
        log.info("worktree: runner %s %s", runner_id, merged.sentence)
        return json_response(
            sc.Merged(
                runner_id=runner_id,
                branch=tree.branch,
                base_branch=base,
                commit=merged.commit,
                fast_forward=merged.fast_forward,
                message=_sentence(merged.sentence),
            )
        )

    async def discard(self, request: web.Request) -> web.Response:
        runner_id = id_param(request)
        row, tree = self._tree(runner_id)
        if row.state in ACTIVE_STATES:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner_id} is still {row.state} in its worktree; stop it first.",
            )
        sentence = await self._git(tree, review.discard, tree)
        self._record(row, events.WORKTREE_DISCARDED, f"{self._title(row)}: {sentence}",
                     sentence, {"branch": tree.branch, "path": tree.path})  # fmt: skip
        log.info("worktree: runner %s %s", runner_id, sentence)
        return json_response(sc.Discarded(runner_id=runner_id, message=_sentence(sentence)))


def _file(change: review.FileChange) -> sc.FileChange:
    return sc.FileChange(
        path=change.path,
        status=change.status,  # type: ignore[arg-type]  # git's letters: A, M, D, T
        added=change.added,
        deleted=change.deleted,
    )


def _sentence(text: str) -> str:
    """git's lower-case clause as the API's sentence: capitalised, one full stop."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


ROUTES = (
    Route("get", "/api/v1/runners/{id}/diff", Worktrees.diff,
          "The changes in a runner's own worktree: files with +/- counts and the unified diff "
          "against where its branch left the branch it started from", ADMIN,
          response=sc.Changes),
    Route("post", "/api/v1/runners/{id}/merge", Worktrees.merge,
          "Merge a runner's worktree into the branch it started from (its uncommitted work "
          "committed first; fast-forward or a merge commit; a conflict changes nothing)", ADMIN,
          response=sc.Merged),
    Route("post", "/api/v1/runners/{id}/discard", Worktrees.discard,
          "Remove a finished runner's worktree and delete its branch", ADMIN,
          response=sc.Discarded),
)  # fmt: skip
