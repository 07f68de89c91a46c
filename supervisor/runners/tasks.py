"""The runners' plumbing on the loop: background tasks kept referenced until done, and the
signals by which one part of the lifecycle tells the others what happened without knowing
them (supervisord's ``events.subscribe``/``notify``, on a small scale). The assembly,
:class:`~supervisor.runners.manager.RunnerManager`, connects the listeners."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, ParamSpec

from supervisor.core.errors import ApiError, ErrorCode

P = ParamSpec("P")


class Signal(Generic[P]):
    """One kind of news; its listeners are called in the order they connected."""

    def __init__(self) -> None:
        self._listeners: list[Callable[P, None]] = []

    def connect(self, listener: Callable[P, None]) -> None:
        self._listeners.append(listener)

    def send(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for listener in self._listeners:
            listener(*args, **kwargs)


class Tasks:
    """The lifecycle's background tasks, and whether it still accepts work: a task started
    once the supervisor shut down would outlive the loop."""

    def __init__(self) -> None:
        self.accepting = True
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def background(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` as a task kept referenced until done (so it is not collected)."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def soon(self, work: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Start ``work`` from a loop callback, unless the manager shut down in between: a
        task created then would outlive the loop."""
        if self.accepting:
            self.background(work())

    def check_accepting(self) -> None:
        if not self.accepting:
            raise ApiError(ErrorCode.SHUTTING_DOWN, "The supervisor is shutting down.")

    def cancel(self) -> None:
        """Cancel every task still running (at shutdown)."""
        for task in self._tasks:
            task.cancel()
