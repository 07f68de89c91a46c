"""The one bridge between the GUI and the supervisor: its HTTP API on loopback.

Embedded or not, the tray app talks to the supervisor the same way, through the API with the
admin token, on the qasync loop: requests never block the GUI thread. The bridge keeps the
latest :class:`Snapshot` (refreshed as soon as the supervisor writes an event, at least every
half minute, and after each action) and tells the windows through Qt signals; it holds no
business logic. The windows ask through its typed methods, one per API call, and never spell
a URL; a refusal is a :class:`BridgeError` with the API's error code and sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import math
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec
from PySide6.QtCore import QObject, Signal

log = logging.getLogger("stratavore.desktop")
_tasks: set[asyncio.Task[Any]] = set()


def spawn(work: Coroutine[Any, Any, Any], owner: QObject | None = None) -> asyncio.Task[Any]:
    """Run ``work`` on the loop from a Qt slot, keeping the task referenced until done; with
    ``owner``, the task is cancelled when that widget is destroyed, so an answer arriving
    later never touches a deleted one."""
    task = asyncio.ensure_future(work)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    if owner is not None:
        owner.destroyed.connect(lambda *_: task.cancel())
    return task


REFRESH_S = 2.0  # the whole snapshot this often while a window shows live figures
FULL_REFRESH_S = 30.0  # the whole snapshot at least this often (usage, CPU, memory move quietly)
NEWS_WAIT_S = 25  # how long one request for news may wait at the supervisor (whole seconds)
RETRY_S = 2.0  # after a failed refresh, or a supervisor that answers without waiting
API = "/api/v1"  # the prefix of every path the bridge asks for
NO_ANSWER = "no_answer"  # BridgeError.code: the supervisor was not reached, or did not answer
Json = dict[str, Any]
UsageReport = Literal["daily", "weekly", "monthly", "session", "blocks"]
TeamReport = Literal["daily", "weekly", "monthly"]
T = TypeVar("T")


class BridgeError(Exception):
    """The supervisor refused a request (``code``: the API's error code) or did not answer
    it (:data:`NO_ANSWER`): ``message`` is the one sentence to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def needs_user(runner: Json) -> bool:
    """Whether a runner needs the user: waiting for input (agents that report it), paused at
    a provider limit, unresponsive, or backing off."""
    return (
        runner["attention"] == "needs_input"
        or runner["state"] in ("paused", "backoff")
        or runner["unresponsive"]
    )


@dataclass
class Snapshot:
    """What the tray and the dashboard show, as of one refresh."""

    status: Json = field(default_factory=dict)
    runners: list[Json] = field(default_factory=list)  # active ones, oldest first
    projects: list[Json] = field(default_factory=list)
    profiles: list[Json] = field(default_factory=list)
    budgets: list[Json] = field(default_factory=list)
    today: Json = field(default_factory=dict)  # today's usage totals
    plan_limits: list[Json] = field(default_factory=list)  # each account's plan windows
    last_event_id: int = 0

    @property
    def attention(self) -> list[Json]:
        """Runners that need the user (see :func:`needs_user`)."""
        return [r for r in self.runners if needs_user(r)]

    @property
    def tightest_budget(self) -> Json | None:
        return max(self.budgets, key=lambda b: b["percent"], default=None)

    @property
    def budget_warning(self) -> bool:
        tightest = self.tightest_budget
        return tightest is not None and tightest["percent"] >= min(tightest["warn"] or [100])


class Bridge(QObject):
    """The windows' one way to the supervisor: the live :class:`Snapshot`, and a typed
    method per API call. Its methods run on the loop (``spawn`` them from a Qt slot)."""

    changed = Signal()  # a new snapshot
    events = Signal(list)  # events newer than the last refresh's
    failed = Signal(str)  # a call the user asked for was refused or not answered: the sentence

    def __init__(self, url: str, token: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.url = url.rstrip("/")
        self.token = token
        self.snapshot = Snapshot()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Lock | None = None
        self._watchers = 0
        self._asking: asyncio.Task[Any] | None = None  # the request waiting for news
        self._full_at = 0.0

    @property
    def watchers(self) -> int:
        """Open windows that show live figures (CPU, memory): while there are any, the whole
        snapshot is refreshed every :data:`REFRESH_S`."""
        return self._watchers

    @watchers.setter
    def watchers(self, count: int) -> None:
        more = count > self._watchers
        self._watchers = count
        if more and self._asking is not None:
            self._asking.cancel()  # stop waiting for news: the window wants figures now

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=aiohttp.ClientTimeout(total=30),
        )
        self._refreshing = asyncio.Lock()
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None and self._refreshing is not None:
            async with self._refreshing:  # a refresh under way ends first; later ones see it
                await self._session.close()

    async def _poll(self) -> None:
        """Every state change is an event: between full refreshes, one request waits at the
        supervisor until an event is written (``GET /events?wait=``), and everything is then
        fetched at once. A hook's attention change reaches the tray in milliseconds, and an
        idle tray costs the supervisor one request every :data:`NEWS_WAIT_S` seconds."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                period = REFRESH_S if self.watchers else FULL_REFRESH_S
                due = self._full_at + period - loop.time()
                if due <= 0:
                    await self.refresh()
                    continue
                wait = min(NEWS_WAIT_S, math.ceil(due))
                asked = loop.time()
                news = await self._news(wait)
                if news is None or news:  # news, or a window opened and wants figures now
                    await self.refresh()
                elif loop.time() - asked < wait / 2:
                    # it did not wait (shutting down, or too old to): don't spin
                    await asyncio.sleep(RETRY_S)
            except BridgeError as exc:
                log.warning("desktop: refresh failed: %s", exc)
                await asyncio.sleep(RETRY_S)

    async def _news(self, wait: int) -> list[Json] | None:
        """Events after the snapshot's, waiting up to ``wait`` seconds for the first; None
        when a window opening cut the wait short."""
        since = self.snapshot.last_event_id
        self._asking = asyncio.ensure_future(self.read_events(since=since, limit=1, wait=wait))
        try:
            return await self._asking
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the bridge is closing
            return None
        finally:
            self._asking = None

    # --- requests --------------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One API call (``path`` below :data:`API`); the decoded answer, or BridgeError with
        the supervisor's sentence, or with :data:`NO_ANSWER` when it could not be reached or
        did not answer in time. ``params`` that are None are left out; ``timeout``: seconds,
        for a request the supervisor holds (default: the session's)."""
        assert self._session is not None, "start() first"
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        held: dict[str, Any] = {}  # no timeout given: the session's
        if timeout is not None:
            held["timeout"] = aiohttp.ClientTimeout(total=timeout)
        try:
            async with self._session.request(
                method, self.url + API + path, json=body, params=query, **held
            ) as response:
                if response.status == 204:
                    return None
                # msgspec decodes on the GUI loop 1.6x as fast as json (1,000 runners: 1.2 ms)
                payload = await response.json(loads=msgspec.json.decode, content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise BridgeError(NO_ANSWER, f"The supervisor did not answer ({reason}).") from exc
        if response.status >= 400:
            raise BridgeError(payload.get("error", "internal"), payload.get("message", ""))
        return payload

    async def act(self, call: Awaitable[T]) -> T | None:
        """A call the user asked for: a refusal is shown (``failed``), and the snapshot
        refreshed; None when refused."""
        try:
            return await call
        except BridgeError as exc:
            self.failed.emit(exc.message)
            return None
        finally:
            await self.refresh_soon()

    async def refresh_soon(self) -> None:
        """A refresh nobody waits for (the menu opening): a failure is only logged."""
        if self._session is None or self._session.closed:
            return
        try:
            await self.refresh()
        except BridgeError as exc:
            log.warning("desktop: refresh failed: %s", exc)

    async def refresh(self) -> Snapshot:
        assert self._refreshing is not None and self._session is not None
        async with self._refreshing:
            if self._session.closed:  # closed while this waited for the one before
                return self.snapshot
            self._full_at = asyncio.get_running_loop().time()
            since = self.snapshot.last_event_id
            # eight results: past typeshed's overloads of gather, which type each one apart
            answers: list[Any] = await asyncio.gather(
                self.status(),
                self.runners(),
                self.projects(),
                self.profiles(),
                self.budgets(),
                self.usage("daily", since=_today()),
                self.plan_limits(),
                # the first refresh takes the history as read: only its newest id matters
                self.read_events(since=since, limit=200) if since else self.read_events(last=1),
            )
            status, runners, projects, profiles, budgets, today, plan_limits, new = answers
            self.snapshot = Snapshot(
                status=status,
                runners=runners,
                projects=projects,
                profiles=profiles,
                budgets=budgets,
                today=today["totals"],
                plan_limits=plan_limits,
                last_event_id=new[-1]["id"] if new else since,
            )
        if new and since:  # the first refresh takes the history as read
            self.events.emit(new)
        self.changed.emit()
        return self.snapshot

    # --- the API, one method per call: its answer, or BridgeError ----------------------------
    async def status(self) -> Json:
        return await self._request("GET", "/status")

    async def runners(self, finished: bool = False) -> list[Json]:
        """The active runners (with ``finished``: every runner), oldest first."""
        return await self._request("GET", "/runners", params={"all": 1 if finished else None})

    async def runner(self, runner_id: int) -> Json:
        return await self._request("GET", f"/runners/{runner_id}")

    async def logs(
        self,
        runner_id: int,
        tail: int | Literal["all"] | None = None,
        offset: int | None = None,
        file_id: str | None = None,
    ) -> Json:
        """A supervised runner's log: its last ``tail`` lines, or (following) what came after
        ``offset`` of the file ``file_id``; the text, the offset and file id to pass next."""
        params = {"tail": tail, "offset": offset, "file_id": file_id}
        return await self._request("GET", f"/runners/{runner_id}/logs", params=params)

    async def diff(self, runner_id: int) -> Json:
        """What a runner's own worktree changed: files with +/- counts, the unified diff."""
        return await self._request("GET", f"/runners/{runner_id}/diff")

    async def merge(self, runner_id: int) -> Json:
        """Merge a runner's worktree into the branch it started from; what was done."""
        return await self._request("POST", f"/runners/{runner_id}/merge")

    async def discard(self, runner_id: int) -> Json:
        """Remove a stopped runner's worktree and branch."""
        return await self._request("POST", f"/runners/{runner_id}/discard")

    async def read_events(
        self,
        since: int | None = None,
        limit: int | None = None,
        last: int | None = None,
        wait: int | None = None,
    ) -> list[Json]:
        """Events after ``since`` (at most ``limit``), or the ``last`` ones; with ``wait``,
        the supervisor holds the request up to that many seconds for the first new one."""
        params = {"since": since, "limit": limit, "last": last, "wait": wait}
        held = None if wait is None else wait + 10
        return await self._request("GET", "/events", params=params, timeout=held)

    async def sessions(self, project: str | None = None, limit: int = 200) -> list[Json]:
        """Agent sessions, most recently active first (of one project, or all)."""
        return await self._request("GET", "/sessions", params={"project": project, "limit": limit})

    async def projects(self) -> list[Json]:
        return await self._request("GET", "/projects")

    async def add_project(self, name: str, path: str) -> Json:
        return await self._request("POST", "/projects", {"name": name, "path": path})

    async def profiles(self) -> list[Json]:
        return await self._request("GET", "/profiles")

    async def add_profile(self, name: str, command: list[str], **fields: Any) -> Json:
        """A user profile; ``fields``: its other fields as the API takes them (description,
        restart, env, binaries, setup_files, worktree, batch, copy_of...)."""
        return await self._request(
            "POST", "/profiles", {"name": name, "command": command, **fields}
        )

    async def delete_profile(self, name: str) -> None:
        await self._request("DELETE", f"/profiles/{quote(name)}")

    async def settings(self) -> list[Json]:
        """The supervisor's settings, each with its value, default and when it applies."""
        return await self._request("GET", "/settings")

    async def set_setting(self, key: str, value: Any) -> Json:
        return await self._request("PUT", f"/settings/{key}", {"value": value})

    async def plan_limits(self) -> list[Json]:
        """The plans' own limits: each account's 5-hour and 7-day use, as last reported."""
        return await self._request("GET", "/limits")

    async def budgets(self) -> list[Json]:
        """Budgets with their current periods' use."""
        return await self._request("GET", "/budgets")

    async def set_budget(
        self,
        scope: str,
        period: str,
        limit_tokens: int | None,
        limit_usd: float | None,
        action: str,
        warn: list[float] | None = None,
    ) -> Json:
        """Set (add or change) the budget of ``scope`` for ``period``."""
        body: Json = {"scope": scope, "period": period, "limit_tokens": limit_tokens,
                      "limit_usd": limit_usd, "action": action}  # fmt: skip
        if warn is not None:
            body["warn"] = warn
        return await self._request("PUT", "/budgets", body)

    async def remove_budget(self, scope: str, period: str) -> None:
        await self._request("DELETE", f"/budgets/{quote(scope, safe=':')}/{period}")

    async def usage(self, report: UsageReport, **params: Any) -> Json:
        """A usage report; ``params``: its filters (since, until, project, agent,
        by_project...), left out when None."""
        return await self._request("GET", f"/usage/{report}", params=params)

    async def import_usage(self) -> Json:
        """Import new usage from the agents' logs now (a first import can take minutes)."""
        return await self._request("POST", "/usage/import", timeout=600)

    async def team(self) -> Json:
        """This machine's team membership and push state (``joined`` false: in no team)."""
        return await self._request("GET", "/team")

    async def team_budgets(self) -> Json:
        """The team budgets as this supervisor enforces them (the team database's last
        answer, with when it came and why it may be stale)."""
        return await self._request("GET", "/team/budgets")

    async def team_usage(self, report: TeamReport, **params: Any) -> Json:
        """A team usage report, summed by the team database; ``params``: since, until, by
        (member, project, model or agent), mode, left out when None."""
        return await self._request("GET", f"/team/usage/{report}", params=params)

    async def channels(self) -> list[Json]:
        """The notification channels."""
        return await self._request("GET", "/notify/channels")

    async def put_channel(
        self,
        name: str,
        kind: str,
        config: Json | None = None,
        policy: Json | None = None,
        secret: str | None = None,
    ) -> Json:
        """Add or change a channel; ``secret`` goes to the OS keyring (sent, never kept)."""
        given = {"kind": kind, "config": config, "policy": policy, "secret": secret}
        body = {k: v for k, v in given.items() if v is not None}
        return await self._request("PUT", f"/notify/channels/{quote(name)}", body)

    async def test_channel(self, name: str) -> Json:
        """Send a test message through the channel; its outcome (result, reason)."""
        return await self._request("POST", f"/notify/channels/{quote(name)}/test", {})

    async def remove_channel(self, name: str) -> None:
        await self._request("DELETE", f"/notify/channels/{quote(name)}")

    async def dead_letters(self) -> list[Json]:
        """Deliveries that gave up."""
        return await self._request("GET", "/notify/dead")

    # --- the user's actions: a refusal is shown, the snapshot refreshed (see act) ----------
    async def launch(
        self, project: str, profile: str | None, command: list[str] | None = None, **fields: Any
    ) -> Json | None:
        """Launch a runner; ``fields``: the launch's other options (mode, prompt,
        resume_session, worktree...), left out when None."""
        given = {"profile": profile, "command": command or None, **fields}
        body = {"project": project, **{k: v for k, v in given.items() if v is not None}}
        return await self.act(self._request("POST", "/runners", body))

    async def resume(self, runner_id: int) -> None:
        """Continue the runner's own agent session (a paused runner at once)."""
        await self.act(self._request("POST", f"/runners/{runner_id}/resume", {}))

    async def stop(self, runner_id: int) -> None:
        await self.act(self._request("POST", f"/runners/{runner_id}/stop", {}))

    async def stop_many(self, runner_ids: list[int]) -> None:
        await self.act(self._request("POST", "/runners/stop", {"ids": runner_ids}))

    async def stop_all(self) -> None:
        await self.act(self._request("POST", "/runners/stop", {"all": True}))

    async def restart(self, runner_id: int) -> None:
        await self.act(self._request("POST", f"/runners/{runner_id}/restart"))

    async def create_project(self, name: str, path: str) -> Json | None:
        return await self.act(self.add_project(name, path))

    async def retry_dead_letter(self, delivery_id: int) -> None:
        """Queue a dead letter's delivery again."""
        await self.act(self._request("POST", f"/notify/dead/{delivery_id}/retry"))


def _today() -> str:
    return datetime.date.today().isoformat()
