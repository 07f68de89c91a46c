"""ccusage, the reference of the usage benchmark: its native build, run over a generated tree.

ccusage 20.x is a Rust binary shipped in per-platform npm packages (``@ccusage/ccusage-<os>-
<arch>``) behind a small Node launcher. It is installed on first use into ``bench/.ccusage``
with ``npm install --prefix bench/.ccusage ccusage@20.0.24`` (20.0.26 has no linux-x64 package
published; 20.0.24 does). Runs call the native binary directly, so that Node's start-up (the
launcher only spawns the binary) is not counted, and give it an empty temp ``HOME`` and only the
data dirs asked for (``CLAUDE_CONFIG_DIR``, comma-joined, or ``CODEX_HOME``), so it never reads
real transcripts or a user's ccusage config. ``--offline`` uses its bundled prices (no network).

Run: ``.venv/bin/python bench/_ccusage.py OUT_DIR/claude [OUT_DIR/claude2]`` prints the daily
totals (``--codex OUT_DIR/codex`` for a Codex home).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

BENCH_DIR = Path(__file__).resolve().parent
PREFIX = BENCH_DIR / ".ccusage"
VERSION = "20.0.24"


@dataclass(frozen=True)
class DayTokens:
    """One day of a ccusage daily report. ``input`` excludes cached input for Codex too
    (ccusage reports Codex's cached input as ``cache_read``)."""

    input: int
    output: int
    cache_creation: int
    cache_read: int
    total: int
    cost_usd: float


@dataclass(frozen=True)
class Run:
    """One ccusage run: wall and CPU time (user + system, all threads), peak RSS (sampled), the
    days."""

    wall_s: float
    cpu_s: float
    max_rss_mb: float
    days: dict[str, DayTokens]

    def totals(self) -> dict[str, int]:
        return {day: tokens.total for day, tokens in self.days.items()}


def native_binary() -> Path:
    """The platform's ccusage binary inside ``bench/.ccusage`` (it may not be installed)."""
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}[platform.system()]
    arch = {"x86_64": "x64", "AMD64": "x64", "aarch64": "arm64", "arm64": "arm64"}[
        platform.machine()
    ]
    name = "ccusage.exe" if system == "win32" else "ccusage"
    return PREFIX / "node_modules" / "@ccusage" / f"ccusage-{system}-{arch}" / "bin" / name


def ensure_ccusage() -> str:
    """Install ccusage into ``bench/.ccusage`` when missing; return its version line."""
    binary = native_binary()
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("ccusage is not installed in bench/.ccusage and npm is not on PATH")
        print(f"installing ccusage@{VERSION} into {PREFIX} (first use) ...", file=sys.stderr)
        PREFIX.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(PREFIX),
                "--no-audit",
                "--no-fund",
                f"ccusage@{VERSION}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if not binary.exists():
            raise RuntimeError(
                f"npm installed ccusage@{VERSION} without a native build for this platform "
                f"({binary.parent.parent.name} missing)"
            )
    if not os.access(binary, os.X_OK):
        # npm left the platform package's binary without its execute bit on these machines;
        # we run the binary directly, not through ccusage's Node launcher.
        binary.chmod(binary.stat().st_mode | 0o111)
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _run(argv: list[str], data_env: dict[str, str]) -> tuple[float, float, float, str]:
    """Run ccusage with an empty HOME plus ``data_env``; wall s, CPU s, peak RSS MB, stdout."""
    with tempfile.TemporaryDirectory(prefix="ccusage-home-") as home:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "NO_COLOR": "1",
            "LANG": "C.UTF-8",
            **data_env,
        }
        with tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, cwd=home, stdout=subprocess.PIPE, stderr=err)
            sampler = _PeakRss(proc.pid)
            assert proc.stdout is not None
            out = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)  # its own rusage, unlike communicate()
            wall = time.perf_counter() - started
            sampler.stop()
            proc.returncode = os.waitstatus_to_exitcode(status)
            proc.stdout.close()
            err.seek(0)
            message = err.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        raise RuntimeError(f"ccusage exited with status {proc.returncode}: {message}")
    return wall, usage.ru_utime + usage.ru_stime, sampler.peak_mb, out.decode()


class _PeakRss:
    """The peak of the summed RSS of a process and its descendants (worker processes), sampled
    every 20 ms until ``stop``. Not ``wait4``'s ``ru_maxrss``: a child forked from this process
    inherits its peak RSS across exec (Linux keeps the larger), so that reports at least this
    process's own RSS, and only the largest process of a tree."""

    def __init__(self, pid: int) -> None:
        self.peak_mb = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(pid,), daemon=True)
        self._thread.start()

    def _sample(self, pid: int) -> None:
        try:
            root = psutil.Process(pid)
        except psutil.Error:
            return
        while not self._done.wait(0.02):
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak_mb = max(self.peak_mb, total / 2**20)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _daily(agent: str, data_env: dict[str, str], tz: str) -> Run:
    ensure_ccusage()
    argv = [str(native_binary()), agent, "daily", "--json", "--offline", "--timezone", tz]
    wall, cpu, rss, out = _run(argv, data_env)
    days = {}
    for row in json.loads(out)["daily"]:
        days[row["date"]] = DayTokens(
            input=row["inputTokens"],
            output=row["outputTokens"],
            cache_creation=row["cacheCreationTokens"],
            cache_read=row["cacheReadTokens"],
            total=row["totalTokens"],
            cost_usd=row.get("totalCost", row.get("costUSD", 0.0)),
        )
    return Run(round(wall, 3), round(cpu, 3), round(rss, 1), days)


def claude_daily(claude_dirs: list[Path], tz: str = "UTC") -> Run:
    """``ccusage claude daily`` over these Claude config dirs (each holding ``projects/``)."""
    return _daily("claude", {"CLAUDE_CONFIG_DIR": ",".join(str(d) for d in claude_dirs)}, tz)


def codex_daily(codex_home: Path, tz: str = "UTC") -> Run:
    """``ccusage codex daily`` over a Codex home (holding ``sessions/``)."""
    return _daily("codex", {"CODEX_HOME": str(codex_home)}, tz)


def run_daily(claude_dirs: list[Path], tz: str = "UTC") -> tuple[float, dict[str, int]]:
    """Wall seconds of ``ccusage claude daily`` and its total tokens per day."""
    run = claude_daily(claude_dirs, tz)
    return run.wall_s, run.totals()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("claude_dirs", type=Path, nargs="*", help="Claude config dirs")
    p.add_argument("--codex", type=Path, metavar="CODEX_HOME")
    p.add_argument("--tz", default="UTC")
    p.add_argument("--repeat", type=int, default=1, help="runs (each one is printed)")
    args = p.parse_args()
    print(ensure_ccusage())
    jobs = []
    if args.claude_dirs:
        jobs.append(("claude", lambda: claude_daily(args.claude_dirs, args.tz)))
    if args.codex:
        jobs.append(("codex", lambda: codex_daily(args.codex, args.tz)))
    for name, job in jobs:
        for _ in range(args.repeat):
            run = job()
            print(
                f"{name}: {run.wall_s:.3f} s wall, {run.cpu_s:.3f} s CPU, "
                f"{run.max_rss_mb:.0f} MB peak RSS, {len(run.days)} days"
            )
        print(
            f"| {'date':10} | {'input':>12} | {'output':>12} | {'cache create':>14} | "
            f"{'cache read':>15} | {'total':>15} | {'cost $':>10} |"
        )
        for day, t in sorted(run.days.items()):
            print(
                f"| {day:10} | {t.input:12,} | {t.output:12,} | {t.cache_creation:14,} | "
                f"{t.cache_read:15,} | {t.total:15,} | {t.cost_usd:10,.2f} |"
            )
        total = sum(t.total for t in run.days.values())
        print(f"{name}: {total:,} tokens in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
