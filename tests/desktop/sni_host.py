"""A StatusNotifierItem tray host for tests: what GNOME's AppIndicator extension, KDE Plasma
and waybar are to an app, on a private session bus.

It owns ``org.kde.StatusNotifierWatcher`` and says a host is registered (Qt's condition for
its DBus tray), records the items that register, and reads an item as a panel does: its
properties (``org.kde.StatusNotifierItem``) and its menu (``com.canonical.dbusmenu``), and
clicks a menu entry. Written with dbus-fast, the asyncio DBus library desktop-notifier already
brings on Linux: pure Python, and it can serve a name and an interface, which a host must
(jeepney only calls; dbus-python needs a GLib main loop and a compiler). It runs in a child
process (its asyncio loop in a thread there), so a test calls it synchronously: a thread in
the test process itself once died of a segmentation fault in the whole suite (the test
process holds Qt objects, and a garbage collection run from a non-GUI thread may free them).
(No ``from __future__ import annotations`` here: dbus-fast reads the DBus signatures from the
annotations as written.)
"""

import asyncio
import contextlib
import pickle
import select
import subprocess
import sys
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_property, method, signal

WATCHER = "org.kde.StatusNotifierWatcher"
ITEM = "org.kde.StatusNotifierItem"
MENU = "com.canonical.dbusmenu"


class _Watcher(ServiceInterface):
    """``org.kde.StatusNotifierWatcher`` with one host (us) registered."""

    def __init__(self) -> None:
        super().__init__(WATCHER)
        self.items: list[str] = []  # what each item said: its bus name (Qt: the unique one)

    @method()
    def RegisterStatusNotifierItem(self, service: "s") -> None:  # noqa: F821
        self.items.append(service)
        self.StatusNotifierItemRegistered(service)

    @method()
    def RegisterStatusNotifierHost(self, service: "s") -> None:  # noqa: F821
        pass

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> "as":  # noqa: F722
        return list(self.items)

    @dbus_property(access=PropertyAccess.READ)
    def IsStatusNotifierHostRegistered(self) -> "b":  # noqa: F821
        return True

    @dbus_property(access=PropertyAccess.READ)
    def ProtocolVersion(self) -> "i":  # noqa: F821
        return 0

    @signal()
    def StatusNotifierItemRegistered(self, service: str) -> "s":  # noqa: F821
        return service

    @signal()
    def StatusNotifierHostRegistered(self) -> None:
        pass


@dataclass
class MenuEntry:
    id: int
    label: str
    enabled: bool
    children: list["MenuEntry"]

    def find(self, label: str) -> "MenuEntry":
        """The entry of this label, at any depth."""
        for child in self.children:
            if child.label.replace("&", "") == label:
                return child
            try:
                return child.find(label)
            except LookupError:
                pass
        raise LookupError(f"no menu entry {label!r} in {self.labels()}")

    def labels(self) -> list[str]:
        return [c.label.replace("&", "") for c in self.children if c.label]


class _ThreadedHost:
    """The watcher and host on the bus at ``address``, in a thread of its own (of the child
    process that :class:`StatusNotifierHost` starts)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._bus: MessageBus | None = None
        self._watcher = _Watcher()

    def _run(self, work: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)

    def start(self) -> "_ThreadedHost":
        self._thread.start()

        async def up() -> None:
            bus = MessageBus(bus_address=self.address, bus_type=BusType.SESSION)
            self._bus = await bus.connect()
            self._bus.export("/StatusNotifierWatcher", self._watcher)
            await self._bus.request_name(WATCHER)
            self._watcher.StatusNotifierHostRegistered()

        self._run(up())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            self._loop.close()
            return
        if self._bus is not None:
            bus = self._bus

            async def down() -> None:
                bus.disconnect()
                with contextlib.suppress(Exception):  # it was the bus that went away
                    await bus.wait_for_disconnect()

            self._run(down())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def items(self) -> list[str]:
        """What registered items said: a bus name, or an object path on their connection."""
        return list(self._watcher.items)

    async def _call(self, destination: str, path: str, interface: str, member: str,
                    signature: str = "", body: list[Any] | None = None) -> list[Any]:  # fmt: skip
        assert self._bus is not None
        reply = await self._bus.call(Message(
            destination=destination, path=path, interface=interface, member=member,
            signature=signature, body=body or [],
        ))  # fmt: skip
        assert reply is not None
        if reply.message_type is MessageType.ERROR:
            raise RuntimeError(f"{member}: {reply.error_name}: {reply.body}")
        return reply.body

    @staticmethod
    def _where(service: str) -> tuple[str, str]:
        """(bus name, object path) of a registered item (Qt registers its unique name)."""
        name, _, path = service.partition("/")
        return name, "/" + path if path else "/StatusNotifierItem"

    def properties(self, service: str) -> dict[str, Any]:
        """The item's properties, as a panel reads them (``GetAll``)."""
        name, path = self._where(service)
        (found,) = self._run(self._call(
            name, path, "org.freedesktop.DBus.Properties", "GetAll", "s", [ITEM]
        ))  # fmt: skip
        return {key: value.value for key, value in found.items()}

    def menu(self, service: str) -> MenuEntry:
        """The item's whole menu (``GetLayout`` of the root, all levels)."""
        name, _ = self._where(service)
        path = self.properties(service)["Menu"]
        _revision, layout = self._run(self._call(
            name, path, MENU, "GetLayout", "iias", [0, -1, []]
        ))  # fmt: skip

        def entry(node: list[Any]) -> "MenuEntry":
            ident, props, children = node
            return MenuEntry(
                ident, props.get("label", Variant("s", "")).value,
                props.get("enabled", Variant("b", True)).value,
                [entry(child.value) for child in children],
            )  # fmt: skip

        return entry(layout)

    def about_to_show(self, service: str, entry: int) -> None:
        """Tell the item its menu (or submenu ``entry``) opens, as a panel does first."""
        name, _ = self._where(service)
        path = self.properties(service)["Menu"]
        self._run(self._call(name, path, MENU, "AboutToShow", "i", [entry]))

    def click(self, service: str, entry: int) -> None:
        """Click menu entry ``entry`` (``Event(id, "clicked", …)``)."""
        name, _ = self._where(service)
        path = self.properties(service)["Menu"]
        self._run(self._call(
            name, path, MENU, "Event", "isvu", [entry, "clicked", Variant("s", ""), 0]
        ))  # fmt: skip


def _serve(address: str) -> None:
    """The child process: a host on the bus, doing what the parent asks on stdin, one call at
    a time, each answer a pickle on stdout."""
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    host = _ThreadedHost(address)

    def answer(status: str, value: Any) -> None:
        pickle.dump((status, value), answers)
        answers.flush()

    try:
        host.start()
    except Exception as exc:
        answer("error", repr(exc))
        return
    answer("ok", None)
    while True:
        name, args = pickle.load(requests)
        if name == "stop":
            host.stop()
            answer("ok", None)
            return
        try:
            found = getattr(host, name)
            answer("ok", found if name == "items" else found(*args))
        except Exception as exc:  # handed to the test, which raises it
            answer("error", f"{type(exc).__name__}: {exc}")


class StatusNotifierHost:
    """The watcher and host on the bus at ``address``, served by a child process."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._process: subprocess.Popen[bytes] | None = None

    def _answer(self, what: str) -> Any:
        assert self._process is not None and self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], 15)
        if not ready:
            raise TimeoutError(f"the SNI host did not answer {what} in 15 s")
        status, value = pickle.load(self._process.stdout)
        if status == "error":
            raise RuntimeError(value)
        return value

    def _ask(self, name: str, *args: Any) -> Any:
        assert self._process is not None and self._process.stdin is not None
        pickle.dump((name, args), self._process.stdin)
        self._process.stdin.flush()
        return self._answer(name)

    def start(self) -> "StatusNotifierHost":
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.desktop.sni_host", self.address],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
        )
        self._answer("start")
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            with contextlib.suppress(OSError, TimeoutError, RuntimeError, EOFError):
                self._ask("stop")
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                pipe.close()

    @property
    def items(self) -> list[str]:
        """What registered items said (none before the host starts)."""
        return [] if self._process is None else self._ask("items")

    def properties(self, service: str) -> dict[str, Any]:
        return self._ask("properties", service)

    def menu(self, service: str) -> MenuEntry:
        return self._ask("menu", service)

    def about_to_show(self, service: str, entry: int) -> None:
        self._ask("about_to_show", service, entry)

    def click(self, service: str, entry: int) -> None:
        self._ask("click", service, entry)


if __name__ == "__main__":
    # by its module's name, so that what it pickles (MenuEntry) unpickles in the test
    from tests.desktop.sni_host import _serve as serve

    serve(sys.argv[1])
