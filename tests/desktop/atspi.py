"""What a screen reader sees of the app under test: its accessibility tree over AT-SPI, on a
private desktop's session bus.

Qt exposes every widget to AT-SPI (``QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1``) once an
accessibility bus exists: :func:`start_bus` runs ``at-spi-bus-launcher`` (Debian's
``at-spi2-core``) on the desktop's session bus. A test then finds widgets by role and name,
reads their text and presses their buttons (the AT-SPI ``Action`` a screen reader's user
triggers), without any hook in the app.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

LAUNCHER = "/usr/libexec/at-spi-bus-launcher"
ACCESSIBLE = "org.a11y.atspi.Accessible"
ROOT = "/org/a11y/atspi/accessible/root"
# AT-SPI's AtspiStateType bits that tests look at
STATES = {"enabled": 8, "focused": 12, "selected": 23, "sensitive": 24, "showing": 25,
          "visible": 30}  # fmt: skip


def available() -> bool:
    return os.path.exists(LAUNCHER) and shutil.which("dbus-daemon") is not None


def start_bus(env: dict[str, str], folder: Path) -> subprocess.Popen:
    """``at-spi-bus-launcher`` on the session bus of ``env`` (its own bus's socket under
    ``folder``); stop it with ``terminate()``."""
    folder.mkdir(parents=True, exist_ok=True)
    runtime = folder / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    own = {**env, "HOME": str(folder), "XDG_RUNTIME_DIR": str(runtime)}
    with open(folder / "at-spi.log", "ab") as log:
        return subprocess.Popen(
            [LAUNCHER, "--launch-immediately"], env=own, stdout=subprocess.DEVNULL,
            stderr=log, start_new_session=True,
        )  # fmt: skip


@dataclass(frozen=True)
class Node:
    """One accessible object: where it lives on the bus, its role and name."""

    dest: str
    path: str
    role: str
    name: str
    depth: int


class Tree:
    """The accessibility tree of the desktop's apps, read through its session bus."""

    def __init__(self, session_address: str) -> None:
        self.session_address = session_address

    def _run(self, work: Callable[[MessageBus], Any]) -> Any:
        async def go() -> Any:
            session = await MessageBus(bus_address=self.session_address).connect()
            try:
                (address,) = await _call(session, "org.a11y.Bus", "/org/a11y/bus",
                                         "org.a11y.Bus", "GetAddress")  # fmt: skip
            finally:
                session.disconnect()
            bus = await MessageBus(bus_address=address).connect()
            try:
                return await work(bus)
            finally:
                bus.disconnect()

        return asyncio.run(go())

    def nodes(self, app: str) -> list[Node]:
        """Every object of the application named ``app`` (its process name), depth first."""

        async def walk(bus: MessageBus) -> list[Node]:
            (apps,) = await _call(bus, "org.a11y.atspi.Registry", ROOT, ACCESSIBLE, "GetChildren")
            found: list[Node] = []
            for dest, path in apps:
                if await _name(bus, dest, path) == app:
                    await _walk(bus, dest, path, 0, found)
            return found

        return self._run(walk)

    def text(self, node: Node) -> str:
        """The whole text of a text widget (a label's, an editor's)."""

        async def read(bus: MessageBus) -> str:
            count = await _property(bus, node, "org.a11y.atspi.Text", "CharacterCount")
            (text,) = await _call(bus, node.dest, node.path, "org.a11y.atspi.Text", "GetText",
                                  "ii", (0, count))  # fmt: skip
            return text

        return self._run(read)

    def states(self, node: Node) -> set[str]:
        """The object's states among :data:`STATES` ("enabled", "showing"...)."""

        async def read(bus: MessageBus) -> set[str]:
            (words,) = await _call(bus, node.dest, node.path, ACCESSIBLE, "GetState")
            bits = sum(word << (32 * i) for i, word in enumerate(words))
            return {name for name, bit in STATES.items() if bits >> bit & 1}

        return self._run(read)

    def select_row(self, table: Node, row: int) -> None:
        """Select only ``row`` of a table, as clicking it does."""

        async def select(bus: MessageBus) -> None:
            await _call(bus, table.dest, table.path, "org.a11y.atspi.Selection", "ClearSelection")
            await _call(bus, table.dest, table.path, "org.a11y.atspi.Table", "AddRowSelection",
                        "i", (row,))  # fmt: skip

        self._run(select)

    def press(self, node: Node) -> None:
        """Do the object's first action (a button's press, a tab's switch)."""

        async def act(bus: MessageBus) -> None:
            await _call(bus, node.dest, node.path, "org.a11y.atspi.Action", "DoAction", "i", (0,))

        self._run(act)


UNKNOWN_OBJECT = "org.freedesktop.DBus.Error.UnknownObject"


class Gone(RuntimeError):
    """The object was destroyed between being listed and being asked."""


async def _call(
    bus: MessageBus, dest: str, path: str, iface: str, member: str, sig: str = "",
    body: tuple = (),
) -> list[Any]:  # fmt: skip
    reply = await bus.call(Message(destination=dest, path=path, interface=iface, member=member,
                                   signature=sig, body=list(body)))  # fmt: skip
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        error = Gone if reply.error_name == UNKNOWN_OBJECT else RuntimeError
        raise error(f"{iface}.{member} on {path}: {reply.error_name} {reply.body}")
    return reply.body


async def _property(bus: MessageBus, node: Node, iface: str, name: str) -> Any:
    (variant,) = await _call(bus, node.dest, node.path, "org.freedesktop.DBus.Properties",
                             "Get", "ss", (iface, name))  # fmt: skip
    return variant.value


async def _name(bus: MessageBus, dest: str, path: str) -> str:
    (variant,) = await _call(bus, dest, path, "org.freedesktop.DBus.Properties", "Get", "ss",
                             (ACCESSIBLE, "Name"))  # fmt: skip
    return variant.value


async def _walk(bus: MessageBus, dest: str, path: str, depth: int, found: list[Node]) -> None:
    try:
        (role,) = await _call(bus, dest, path, ACCESSIBLE, "GetRoleName")
        found.append(Node(dest, path, role, await _name(bus, dest, path), depth))
        if role in ("table cell", "list item"):
            return  # a cell's children are its own parts
        (children,) = await _call(bus, dest, path, ACCESSIBLE, "GetChildren")
    except Gone:  # the widget went away while the tree was read (a list refreshed): not there
        return
    for child_dest, child_path in children:
        await _walk(bus, child_dest, child_path, depth + 1, found)


def named(nodes: list[Node], role: str, name: str | Callable[[str], bool]) -> Iterator[Node]:
    """The nodes of ``role`` whose name is ``name`` (or passes it, a predicate)."""
    for node in nodes:
        if node.role == role and (name(node.name) if callable(name) else node.name == name):
            yield node
