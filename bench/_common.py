"""Shared helpers of the benchmark scripts: a real ``stratavore daemon`` in a temp data dir,
polling, percentiles, concurrent API calls, process clean-up, tables and result files.

Every process a benchmark starts carries the environment variable :data:`MARK`, so that
:func:`kill_marked` can find and kill it (and whatever it started) at the end, whether the run
succeeded, failed or was interrupted.

The ``supervisor`` package is copied once, when this module is imported, and every daemon and
CLI the run starts imports that copy (``PYTHONPATH``): a run measures one version of the code
even while the working tree is being edited. Its digest goes into the results.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import datetime
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import psutil
import requests

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "bench"
RESULTS_DIR = BENCH_DIR / "results"
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
MARK = "STRATAVORE_BENCH_RUN"
RUN_ID = f"{os.getpid()}-{time.time_ns()}"
LOAD_AT_START = round(os.getloadavg()[0], 2)
T = TypeVar("T")


def sources_digest(root: Path) -> str:
    """A digest of every ``.py`` file under ``root``/supervisor (the packages too)."""
    digest = hashlib.sha256()
    base = root / "supervisor"
    for path in sorted(base.rglob("*.py")):
        digest.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _snapshot_sources() -> Path:
    """Copy the supervisor package to a temp dir removed at exit."""
    target = Path(tempfile.mkdtemp(prefix="stratavore-bench-src-"))
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "supervisor", target / "supervisor", ignore=ignore)
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    return target


def _git_state() -> str:
    """The commit checked out, and whether supervisor/ had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "supervisor")
    return git("rev-parse", "--short", "HEAD") + (
        " + uncommitted supervisor/ changes" if dirty else ""
    )


GIT_STATE = _git_state()  # when the sources are copied
SOURCES = _snapshot_sources()
SOURCES_DIGEST = sources_digest(SOURCES)
sys.path.insert(0, str(SOURCES))

from supervisor.core import paths, runtime, settings  # noqa: E402 (the snapshot)
from supervisor.storage.db import close_db, init_db  # noqa: E402


# --- numbers ----------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / mean / max of latencies given in seconds, in milliseconds."""
    return {
        "p50_ms": round(percentile(samples_s, 50) * 1000, 3),
        "p99_ms": round(percentile(samples_s, 99) * 1000, 3),
        "mean_ms": round(statistics.fmean(samples_s) * 1000, 3),
        "max_ms": round(max(samples_s) * 1000, 3),
        "count": len(samples_s),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b rounded, or None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def poll_until(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """Call ``predicate`` until it returns something truthy; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def timed_runs(argv: list[str], runs: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Wall time of ``argv`` run ``runs`` times (stdout discarded): median and spread, in ms."""
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
        walls.append(time.perf_counter() - started)
        if done.returncode not in (0, 3):  # supervisorctl status: 3 when some are not RUNNING
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.decode()}")
    return {
        "median_ms": round(statistics.median(walls) * 1000, 1),
        "min_ms": round(min(walls) * 1000, 1),
        "max_ms": round(max(walls) * 1000, 1),
        "runs": runs,
    }


# --- processes --------------------------------------------------------------------------------
def marked_env(label: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for a child process, marked as belonging to this run (and ``label``)."""
    return {**(os.environ if base is None else base), MARK: f"{RUN_ID}/{label}"}


def kill_marked(label: str = "") -> int:
    """SIGKILL every process marked with this run (and ``label``, when given); count them."""
    prefix = f"{RUN_ID}/{label}"
    victims = []
    for proc in psutil.process_iter(["environ"]):
        with contextlib.suppress(psutil.Error):
            environ = proc.info["environ"] or {}
            if environ.get(MARK, "").startswith(prefix) and proc.pid != os.getpid():
                proc.kill()
                victims.append(proc)
    psutil.wait_procs(victims, timeout=10)
    return len(victims)


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, grace: float = 20.0
) -> None:
    """Ask a child to stop with ``sig``; SIGKILL it after ``grace`` seconds."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def idle_usage(pid: int, window: float, windows: int = 1) -> dict[str, Any]:
    """RSS, and CPU % of one core (user + system time delta) over ``windows`` consecutive
    windows of ``window`` seconds: each window's value, the quietest, and their mean."""
    proc = psutil.Process(pid)
    cpu = []
    for _ in range(windows):
        before = proc.cpu_times()
        time.sleep(window)
        after = proc.cpu_times()
        busy = (after.user - before.user) + (after.system - before.system)
        cpu.append(round(busy / window * 100, 2))
    return {
        "rss_mb": round(proc.memory_info().rss / 2**20, 1),
        "cpu_percent_windows": cpu,
        "cpu_percent_min": min(cpu),
        "cpu_percent_mean": round(statistics.fmean(cpu), 2),
        "window_s": window,
    }


def settle(pid: int, below: float = 5.0, timeout: float = 120.0) -> float:
    """Seconds until ``pid`` uses less than ``below`` % CPU over two 1 s windows in a row."""
    started = time.perf_counter()
    quiet = 0
    while quiet < 2 and time.perf_counter() - started < timeout:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        quiet = quiet + 1 if (cpu_seconds(pid) - before) * 100 < below else 0
    return round(time.perf_counter() - started - 2.0, 1)


def log_times(path: Path, needle: str) -> list[float]:
    """Epoch times of the lines of a log in Python's default ``asctime`` format (local time,
    milliseconds) that contain ``needle``; both supervisors log that way."""
    if not path.exists():
        return []
    times = []
    with open(path, errors="replace") as f:
        for line in f:
            if needle in line:
                stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                times.append(stamp.timestamp())
    return times


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so ``finally`` blocks clean up either way."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- the daemon -------------------------------------------------------------------------------
class Daemon:
    """A real ``stratavore daemon --port 0`` child on a fresh temp ``STRATAVORE_HOME``.

    ``settings`` are written to the new database before the daemon starts (it reads them at
    start). Leaving the context stops the daemon with SIGINT, kills every process it started
    (runners are left running by design when a supervisor stops) and removes the data dir.
    """

    def __init__(
        self, label: str, settings_: dict[str, Any], cpus: Sequence[int] | None = None
    ) -> None:
        self.label = label
        self.settings = settings_
        self.cpus = cpus
        self.home = Path(tempfile.mkdtemp(prefix=f"stratavore-bench-{label}-"))
        self.env = {
            **marked_env(f"daemon-{label}"),
            "STRATAVORE_HOME": str(self.home),
            "STRATAVORE_NO_LOGIN_PATH": "1",
            "PYTHONPATH": str(SOURCES),  # never for supervisord: same package name
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.token = ""
        self.session = requests.Session()
        self.session.trust_env = False

    def __enter__(self) -> Daemon:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        init_db(paths.db_path(self.home))
        try:
            for key, value in self.settings.items():
                settings.save_setting(key, value)
        finally:
            close_db()
        argv = [str(PYTHON), "-m", "supervisor.cli", "daemon", "--port", "0"]
        if self.cpus is not None and shutil.which("taskset"):
            argv = ["taskset", "-c", ",".join(map(str, self.cpus)), *argv]
        with open(self.home / "daemon-stderr.log", "ab") as err:
            self.proc = subprocess.Popen(
                argv,
                env=self.env,
                stdout=err,
                stderr=err,
                cwd=self.home,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
            )
        info = poll_until(self._runtime_info, 30, 0.02, "the daemon to listen")
        self.url = info.url
        self.token = runtime.admin_token(self.home) or ""
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def _runtime_info(self) -> runtime.RuntimeInfo | None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            log = (self.home / "daemon-stderr.log").read_text()
            raise RuntimeError(f"the daemon exited early:\n{log}")
        info = runtime.read_runtime(self.home)
        return info if info is not None and info.pid == self.pid else None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def close(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        kill_marked(f"daemon-{self.label}")
        self.session.close()
        shutil.rmtree(self.home, ignore_errors=True)

    # --- API ---------------------------------------------------------------------------------
    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(self.url + path, params=params, timeout=60)
        response.raise_for_status()
        return response.json() if path != "/metrics" else response.text

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.session.post(self.url + path, json=body, timeout=60)
        if response.status_code >= 400:
            raise RuntimeError(f"POST {path}: HTTP {response.status_code}: {response.text}")
        return response.json()

    def project(self, name: str) -> Path:
        """Create a project whose folder is a new dir in the data dir; return the folder."""
        folder = self.home / "projects" / name
        folder.mkdir(parents=True)
        self.post("/api/v1/projects", {"name": name, "path": str(folder)})
        return folder

    def runner_states(self, include_finished: bool = False) -> list[str]:
        runners = self.get("/api/v1/runners", **({"all": 1} if include_finished else {}))
        return [r["state"] for r in runners]

    def cli(self, *args: str) -> list[str]:
        """argv of the real ``stratavore`` CLI talking to this daemon (run with :attr:`env`)."""
        return [str(VENV_BIN / "stratavore"), *args]

    def post_many(self, requests_: list[tuple[str, dict[str, Any]]], limit: int) -> list[Any]:
        """POST every (path, body) with at most ``limit`` in flight; answers in order."""
        return asyncio.run(post_concurrently(self.url, self.token, requests_, limit))


async def post_concurrently(
    base_url: str, token: str, requests_: list[tuple[str, dict[str, Any]]], limit: int
) -> list[Any]:
    """POST every (path, body) through a pool of ``limit`` connections; raise on any error."""
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=limit)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(
        base_url, connector=connector, headers=headers, timeout=timeout
    ) as session:

        async def one(path: str, body: dict[str, Any]) -> Any:
            async with session.post(path, json=body) as response:
                payload = await response.json()
                if response.status >= 400:
                    raise RuntimeError(f"POST {path}: HTTP {response.status}: {payload}")
                return payload

        return await asyncio.gather(*(one(path, body) for path, body in requests_))


# --- reporting --------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu_model,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "argv": " ".join(["bench/" + Path(sys.argv[0]).name, *sys.argv[1:]]),
        "loadavg_1m_start": LOAD_AT_START,
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
        "git": GIT_STATE,
        "supervisor_sources_sha256": SOURCES_DIGEST,
        "working_tree_changed_during_run": sources_digest(REPO) != SOURCES_DIGEST,
    }


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]]

    def render(self) -> str:
        """A Markdown table (readable in a terminal, pasteable into docs)."""
        cells = [[_cell(v) for v in row] for row in self.rows]
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(self.headers)]
        lines = [
            "| " + " | ".join(h.ljust(w) for h, w in zip(self.headers, widths, strict=True)) + " |",
            "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        ]
        for row in cells:
            lines.append(
                "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
            )
        return f"### {self.title}\n\n" + "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def verdict(value: float | None, target: float, higher_is_better: bool = False) -> str:
    """'met' / 'MISSED' for ``value`` against its target (an upper bound by default)."""
    if value is None:
        return "-"
    return "met" if (value >= target if higher_is_better else value <= target) else "MISSED"


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = RESULTS_DIR / f"{name}.json"
    target.write_text(json.dumps(payload, indent=2) + "\n")
    return target


@contextlib.contextmanager
def ledger(home: Path) -> Iterator[None]:
    """This process's DB bound to ``home``'s database for the block (imports the copied
    ``supervisor`` package: call after this module set it up)."""
    from supervisor.core import paths

    init_db(paths.db_path(home))
    try:
        yield
    finally:
        close_db()
