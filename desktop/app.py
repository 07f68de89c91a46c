"""``stratavore-desktop``: the tray app, with the supervisor embedded on its qasync loop.

If a headless supervisor already runs for this data dir, the app attaches to it as a client
instead of starting a second one. One instance per user and data dir: a second launch brings
the first one's dashboard forward and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
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
from supervisor.daemon import setup_logging

if TYPE_CHECKING:
    from desktop.shell import Shell

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
    install_crash_hook()
    root = paths.data_dir()
    setup_logging(root, verbose=False)

    import qasync
    from PySide6.QtWidgets import QApplication

    from desktop.instance import SingleInstance

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)  # the tray's widgets need a QApplication
    app.setApplicationName("Stratavore")
    from desktop.icons import apply_identity

    apply_identity(app)
    app.setQuitOnLastWindowClosed(False)
    instance = SingleInstance(instance_key(root))
    if not instance.claim():
        print("stratavore-desktop: already running; its dashboard was brought forward.")
        return 0
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

    shell = Shell(root, instance, open_dashboard=args.dashboard)
    quit_on_signals(shell)
    with loop:
        return loop.run_until_complete(shell.run())
