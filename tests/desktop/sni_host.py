"""A StatusNotifierItem tray host for tests: what GNOME's AppIndicator extension, KDE Plasma
and waybar are to an app, on a private session bus.

It owns ``org.kde.StatusNotifierWatcher`` and says a host is registered (Qt's condition for
its DBus tray), records the items that register, and reads an item as a panel does: its
properties (``org.kde.StatusNotifierItem``) and its menu (``com.canonical.dbusmenu``), and
clicks a menu entry. Written with dbus-fast, the asyncio DBus library desktop-notifier already
brings on Linux: pure Python, and it can serve a name and an interface, which a host must
(jeepney only calls; dbus-python needs a GLib main loop and a compiler). It runs its own
asyncio loop in a thread, so a test calls it synchronously. (No ``from __future__ import
annotations`` here: dbus-fast reads the DBus signatures from the annotations as written.)
"""

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
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


class StatusNotifierHost:
    """The watcher and host on the bus at ``address``, in a thread of its own."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._bus: MessageBus | None = None
        self._watcher = _Watcher()

    def _run(self, work: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)

    def start(self) -> "StatusNotifierHost":
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
