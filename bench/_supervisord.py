"""supervisord 4.x for comparison, from its own venv (``bench/.venv-supervisord``).

PyPI's ``supervisor`` package has the same import name as Stratavore's ``supervisor``
package, so it must never be installed into the project's venv: it gets a venv of its own,
created on first use, and is only ever run as the ``supervisord`` / ``supervisorctl`` programs.
Polling goes through supervisord's XML-RPC interface (``getAllProcessInfo``, the data behind
``supervisorctl status``) over its unix socket, with a few lines of stdlib instead of its
client library.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, kill_marked, log_times, marked_env, poll_until, stop_process

VENV = BENCH_DIR / ".venv-supervisord"
SUPERVISORD = VENV / "bin" / "supervisord"
SUPERVISORCTL = VENV / "bin" / "supervisorctl"


def ensure_venv() -> str:
    """Create the separate venv with supervisord in it when missing; return its version."""
    if not SUPERVISORD.exists():
        print(f"creating {VENV} with supervisord (first use) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "--quiet", "supervisor>=4,<5"], check=True
        )
    done = subprocess.run(
        [str(SUPERVISORD), "--version"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixConnection(self.path)


class Supervisord:
    """A supervisord in the foreground with one program of ``numprocs`` ``command`` copies
    (none when ``numprocs`` is 0), in a temp dir removed on exit with everything it started."""

    def __init__(
        self, label: str, numprocs: int, startsecs: float, command: str = "sleep 600"
    ) -> None:
        self.label = label
        self.numprocs = numprocs
        self.dir = Path(tempfile.mkdtemp(prefix=f"supervisord-bench-{label}-"))
        self.conf = self.dir / "supervisord.conf"
        self.sock = self.dir / "supervisor.sock"
        (self.dir / "childlogs").mkdir()
        self.conf.write_text(self._config(numprocs, startsecs, command))
        self.env = marked_env(f"supervisord-{label}")
        self.proc: subprocess.Popen[bytes] | None = None
        self.rpc = xmlrpc.client.ServerProxy(
            "http://localhost/RPC2", transport=_UnixTransport(str(self.sock))
        )

    def _config(self, numprocs: int, startsecs: float, command: str) -> str:
        conf = f"""\
            [unix_http_server]
            file={self.sock}

            [supervisord]
            nodaemon=true
            logfile={self.dir}/supervisord.log
            pidfile={self.dir}/supervisord.pid
            childlogdir={self.dir}/childlogs

            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

            [supervisorctl]
            serverurl=unix://{self.sock}
            """
        if numprocs:
            conf += f"""
            [program:sleeper]
            command={command}
            numprocs={numprocs}
            process_name=%(program_name)s_%(process_num)d
            startsecs={startsecs:g}
            autostart=true
            """
        return textwrap.dedent(conf)

    def __enter__(self) -> Supervisord:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start supervisord (it starts its programs at once: autostart)."""
        with open(self.dir / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen(
                [str(SUPERVISORD), "-c", str(self.conf)],
                env=self.env,
                stdout=err,
                stderr=err,
                cwd=self.dir,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def states(self) -> list[str] | None:
        """Every process's state name, or None while supervisord does not answer yet."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"supervisord exited: {(self.dir / 'stderr.log').read_text()}")
        try:
            return [p["statename"] for p in self.rpc.supervisor.getAllProcessInfo()]
        except (OSError, xmlrpc.client.Fault, http.client.HTTPException):
            return None

    def wait_all(self, state: str, timeout: float, interval: float) -> float:
        """Poll until all ``numprocs`` processes are in ``state``; the monotonic time then."""

        def done() -> bool:
            states = self.states()
            return states is not None and states.count(state) == self.numprocs

        poll_until(done, timeout, interval, f"supervisord: all {self.numprocs} {state}")
        return time.perf_counter()

    def running_times(self) -> list[float]:
        """Epoch times of the "entered RUNNING state" lines of supervisord's own log."""
        return log_times(self.dir / "supervisord.log", "entered RUNNING state")

    def wait_log(self, timeout: float, interval: float) -> list[float]:
        """Watch supervisord's log (no request to supervisord) until all ``numprocs``
        processes have entered RUNNING; their times."""
        return poll_until(
            lambda: (t := self.running_times()) and len(t) >= self.numprocs and t,
            timeout,
            interval,
            f"supervisord's log: {self.numprocs} entered RUNNING",
        )

    def ctl(self, *args: str) -> list[str]:
        """argv of ``supervisorctl`` for this supervisord."""
        return [str(SUPERVISORCTL), "-c", str(self.conf), *args]

    def close(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=30)  # SIGINT: supervisord stops its programs
        kill_marked(f"supervisord-{self.label}")
        shutil.rmtree(self.dir, ignore_errors=True)
