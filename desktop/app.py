"""``stratavore-desktop``: the tray app, with the supervisor embedded on its qasync loop.

If a headless supervisor already runs for this data dir, the app attaches to it as a client
instead of starting a second one. One instance per user and data dir: a second launch brings
the first one's dashboard forward and exits, having imported nothing but the standard library
and the data dir's location (:func:`bring_forward`).

The order of a start is its speed: the single instance is claimed, then the tray icon is shown
with the last run's face (:mod:`desktop.startup`), and only then is the rest imported (the
supervisor and its libraries in a thread, while Qt paints the icon) and the supervisor started
or attached to.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from supervisor.core import paths

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from desktop.instance import SingleInstance
    from desktop.shell import Shell
    from desktop.startup import StartupIcon

log = logging.getLogger("stratavore.desktop")
_dialog_shown = False


# --- crash hook: installed before Qt starts ------------------------------------------------
def report_crash(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """An unexpected error: to the log with its traceback, and to a dialog once Qt runs."""
    global _dialog_shown
    text = "".join(traceback.format_exception(kind, value, tb))
    log.error("desktop: unexpected error\n%s", text)
    from PySide6.QtWidgets import QApplication, QMessageBox

    if QApplication.instance() is not None and not _dialog_shown:
        _dialog_shown = True
        box = QMessageBox(QMessageBox.Icon.Critical, "Stratavore", f"Unexpected error: {value}")
        box.setDetailedText(text)
        box.setInformativeText("It was written to the log. Stratavore keeps running.")
        box.exec()
        _dialog_shown = False


def install_crash_hook() -> None:
    sys.excepthook = report_crash
    threading.excepthook = lambda args: report_crash(
        args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback
    )


def instance_key(root: Path) -> str:
    """The single-instance socket name: one per user and data dir."""
    who = f"{os.getuid() if hasattr(os, 'getuid') else os.environ.get('USERNAME', '')}:{root}"
    return "stratavore-" + hashlib.sha256(who.encode()).hexdigest()[:16]


def bring_forward(key: str) -> bool:
    """Ask the first instance to bring its dashboard forward, before Qt or anything heavy is
    imported: True when it took the message. It listens with a QLocalServer
    (:mod:`desktop.instance`), which is a Unix socket named ``key`` in Qt's temp dir
    (``$TMPDIR`` or /tmp) or, on Windows, the named pipe ``key``; the same ``show`` line its
    Qt client sends. False (nobody listening, a socket left by a crash) leaves the claim to
    :meth:`SingleInstance.claim`, which settles a race between two starts."""
    try:
        if os.name == "nt":
            with open(rf"\\.\pipe\{key}", "wb", buffering=0) as pipe:
                pipe.write(b"show\n")
            return True
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(os.path.join(os.environ.get("TMPDIR") or "/tmp", key))
            sock.sendall(b"show\n")
        return True
    except OSError:
        return False


# Qt-free and heavy: imported in a thread while the startup icon is painted (the modules
# that define Qt classes are imported on the GUI thread after them).
BACKGROUND_IMPORTS = ("supervisor.daemon", "desktop_notifier")


def import_while_painting(app: QApplication, modules: Sequence[str]) -> None:
    """Import ``modules`` in a thread while this (the GUI) thread lets Qt paint and dock the
    tray icon; an import's error is raised here."""
    from PySide6.QtCore import QEventLoop

    failed: list[BaseException] = []

    def load() -> None:
        try:
            for name in modules:
                importlib.import_module(name)
        except BaseException as exc:  # raised again on the GUI thread
            failed.append(exc)

    worker = threading.Thread(target=load, name="stratavore-imports", daemon=True)
    worker.start()
    while worker.is_alive():
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        worker.join(0.01)
    if failed:
        raise failed[0]


def quit_on_signals(shell: Shell) -> None:
    """SIGTERM (a logout, `kill`) and SIGINT end the app as Quit does: the supervisor stops
    cleanly and its runners are left for adoption. Qt's loop runs in C++, so the signal is
    noticed through a wake-up socket that Qt watches."""
    if os.name == "nt":
        return
    from PySide6.QtCore import QSocketNotifier

    receive, send = socket.socketpair()
    receive.setblocking(False)
    send.setblocking(False)
    signal.set_wakeup_fd(send.fileno())
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)  # the wake-up byte does the work
    notifier = QSocketNotifier(receive.fileno(), QSocketNotifier.Type.Read, shell.instance)

    def woken() -> None:
        with contextlib.suppress(BlockingIOError):
            receive.recv(64)
        shell.quit()

    notifier.activated.connect(woken)
    shell.keep = (receive, send, notifier)  # alive as long as the shell


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stratavore-desktop", description=__doc__)
    parser.add_argument("--dashboard", action="store_true", help="open the dashboard at start")
    parser.add_argument(
        "--selftest", action="store_true", help="check this build works here, then exit"
    )
    args = parser.parse_args(argv)
    if args.selftest:  # before anything touches the user's data dir
        from desktop import selftest

        return selftest.run()
    root = paths.data_dir()
    key = instance_key(root)
    if bring_forward(key):
        print("stratavore-desktop: already running; its dashboard was brought forward.")
        return 0
    install_crash_hook()
    started = start_qt(key, root)
    if started is None:
        print("stratavore-desktop: already running; its dashboard was brought forward.")
        return 0
    app, instance, startup = started
    import_while_painting(app, BACKGROUND_IMPORTS)
    from supervisor.daemon import setup_logging

    setup_logging(root, verbose=False)
    return run_shell(app, root, instance, startup, open_dashboard=args.dashboard)


def start_qt(key: str, root: Path) -> tuple[QApplication, SingleInstance, StartupIcon] | None:
    """Qt's application, the single instance claimed (None: another one runs, and was told
    to come forward), and the tray icon shown with the last run's face."""
    from PySide6.QtWidgets import QApplication

    from desktop.instance import SingleInstance

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)  # the tray's widgets need a QApplication
    app.setApplicationName("Stratavore")
    app.setQuitOnLastWindowClosed(False)
    instance = SingleInstance(key)
    if not instance.claim():
        return None
    from desktop.startup import StartupIcon

    startup = StartupIcon(root)
    from desktop.icons import apply_identity

    apply_identity(app)  # the application icon, drawn at eight sizes: after the tray's
    return app, instance, startup


def run_shell(
    app: QApplication,
    root: Path,
    instance: SingleInstance,
    startup: StartupIcon,
    open_dashboard: bool,
) -> int:
    """The qasync loop on Qt's, and the shell on it until the app quits."""
    import qasync

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(
        lambda _loop, context: report_crash(
            type(context.get("exception") or RuntimeError(context["message"])),
            context.get("exception") or RuntimeError(context["message"]),
            getattr(context.get("exception"), "__traceback__", None),
        )
    )
    from desktop.shell import Shell

    shell = Shell(root, instance, open_dashboard=open_dashboard, startup=startup)
    quit_on_signals(shell)
    with loop:
        return loop.run_until_complete(shell.run())
