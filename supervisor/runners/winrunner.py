"""The root process of a Windows runner: Windows' counterpart of the POSIX trampoline.

    python -m supervisor.runners.winrunner EXIT_FILE -- COMMAND ARGS...
    python -m supervisor.runners.winrunner EXIT_FILE --line "CMD.EXE LINE"   (a whole line)
    stratavore.exe --windows-runner EXIT_FILE -- COMMAND ARGS...     (from a frozen bundle)

Puts itself in a Job Object of its own, runs the command (in the working directory and with
the standard handles it was given, in a process group of its own on the shared console),
waits, writes the exit status to EXIT_FILE and exits with it. Its stop event turns into
CTRL_BREAK for the command's group. See :mod:`supervisor.runners.winjob` for why.

Only the standard library and :mod:`supervisor.runners.winjob` are imported: one of these runs per
runner, so it starts fast and stays small.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence

from supervisor.runners import winjob

USAGE = "usage: stratavore --windows-runner EXIT_FILE (-- COMMAND [ARGS...] | --line LINE)"


def own_identity() -> tuple[int, float]:
    """(pid, create time) of this process, as psutil reports it (the supervisor's identity
    of the runner's root, from which both sides name the job)."""
    import psutil

    me = psutil.Process()
    return me.pid, me.create_time()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] not in ("--", "--line") or (args[1] == "--line" and len(args) > 3):
        print(USAGE, file=sys.stderr)
        return 2
    exit_file = args[0]
    # --line: the one string cmd.exe must get as it is (commands.popen_args), not re-quoted
    command: list[str] | str = args[2] if args[1] == "--line" else args[2:]
    pid, created = own_identity()
    _job = winjob.create_own_job(pid, created)  # the handle lives as long as this process
    stop = winjob.create_stop_event(pid, created)
    try:
        child = subprocess.Popen(command, creationflags=winjob.CREATE_NEW_PROCESS_GROUP)
    except OSError as exc:
        print(f"stratavore: cannot start {command!r}: {exc}", file=sys.stderr, flush=True)
        code = 127
    else:

        def relay_stop() -> None:
            winjob.wait_event(stop)
            if child.poll() is None:
                # into the runner's log, as the POSIX shell notes "Terminated"
                sent = winjob.ctrl_break(child.pid)
                print(f"stratavore: stop requested: CTRL_BREAK {'sent' if sent else 'failed'}",
                      file=sys.stderr, flush=True)  # fmt: skip

        threading.Thread(target=relay_stop, daemon=True).start()
        code = child.wait()
    tmp = exit_file + ".tmp"
    with open(tmp, "w") as file:
        file.write(f"{code}\n")
    os.replace(tmp, exit_file)
    # A Windows exit status is 32 bits unsigned (0xC000013A: ended by Ctrl+C); Python takes
    # a C int and hands its bits to ExitProcess.
    return code - 2**32 if code >= 2**31 else code


def run() -> None:
    """The entry from source (see winjob.wrapper_command)."""
    sys.exit(main())


if __name__ == "__main__":
    run()
