"""kill -9 chaos: a real supervisor under many runners and a webhook channel is killed with
SIGKILL at random moments, while requests are on their way, and started again.

The runners are plain ``sh``/``sleep`` processes (a few MB each): half run until stopped, half
end by themselves with a known status at random times spread over the whole run, so some end
while the supervisor is up and some while it is down. During each round a load thread launches
short runners, stops long ones and lists them; the kill lands at a random moment of that.

After every start: event ids are 1..N with no gap and every event listed before the kill is
still there unchanged; every runner the API shows active has its very process alive, with the
same pid as before the kill (adopted); every finished one has no process left; no process of
the data dir is without an active runner. At the end, with every runner stopped or ended: each
one finished with its status (a short one ``exited``/``failed`` with its own exit code, a long
one ``stopped``), and the webhook received every event written since it was added, at least
once. The time from a restart to a served API, which comes after the full reconcile, is
measured for each kill.

Used by ``tests/e2e/test_chaos.py`` (scaled down, in CI) and ``bench/chaos.py`` (200 runners).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from supervisor.api.client import ApiClient, ClientError, NotRunning
from tests.sink import Sink

ACTIVE = {"starting", "running", "stopping"}
FINISHED = {"stopped", "exited", "failed", "fatal", "lost"}
SLEEP = shutil.which("sleep") or "/bin/sleep"
LONG = [SLEEP, "100000"]
SETTLE = 10.0  # seconds a discrepancy may take to resolve (an exit seen a moment later)


class Daemon(Protocol):
    """What the run needs of a started daemon (tests.conftest.Daemon has it)."""

    root: Path

    @property
    def api(self) -> ApiClient: ...

    def kill(self) -> None: ...


def short(seconds: float, code: int) -> list[str]:
    """A runner that ends by itself after ``seconds`` with status ``code``."""
    return ["/bin/sh", "-c", f"sleep {seconds:.2f}; exit {code}"]


@dataclass
class Round:
    kill_after_s: float  # after the start, while the load ran
    active_at_kill: int
    down_s: float
    recovery_s: float  # restart until the API served (the reconcile is done before)
    adopted: int  # active at the kill and after the restart, with the same pid
    ended_while_down: int  # active at the kill, finished by the reconcile (from exit files)
    events: int


@dataclass
class Report:
    seed: int
    runners: int = 0
    launches_cut: int = 0  # launch requests cut off by a kill (the runner may exist or not)
    events: int = 0
    deliveries: int = 0
    duplicates: int = 0  # events the webhook received more than once (allowed)
    rounds: list[Round] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


class Chaos:
    """One chaos run; :meth:`run` returns what was measured and every violation seen."""

    def __init__(
        self,
        start: Callable[[], Daemon],
        project_dir: Path,
        sink: Sink,
        runners: int,
        kills: int,
        seed: int | None = None,
        say: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.start = start
        self.project_dir = project_dir
        self.sink = sink
        self.runners = runners
        self.kills = kills
        self.seed = random.randrange(2**32) if seed is None else seed
        self.rng = random.Random(self.seed)
        self.say = say
        self.report = Report(self.seed)
        self.codes: dict[int, int | None] = {}  # runner -> its own exit status; None: long
        self.lock = threading.Lock()
        self.span = kills * 3.0  # short runners end within about the whole run

    def run(self) -> Report:
        daemon = self.start()
        api = daemon.api
        for key in ("max_runners_per_project", "max_runners_global"):
            api.request("PUT", f"/api/v1/settings/{key}", body={"value": self.runners * 2})
        api.request(
            "PUT",
            "/api/v1/notify/channels/hook",
            body={"kind": "webhook", "config": {"url": f"{self.sink.url}/hook"}},
        )
        first_event = _events(api)[-1]["id"] if _events(api) else 0
        api.post("/api/v1/projects", {"name": "chaos", "path": str(self.project_dir)})
        for i in range(self.runners):
            if i % 2:
                self._launch(api, short(self.rng.uniform(0.5, self.span), i % 4), i % 4)
            else:
                self._launch(api, LONG, None)
        self.say(f"chaos seed {self.seed}: {self.runners} runners launched")
        for n in range(self.kills):
            daemon = self._round(daemon, n)
        self._finish(daemon.api, daemon.root, first_event)
        return self.report

    # --- one round ------------------------------------------------------------------------
    def _round(self, daemon: Daemon, n: int) -> Daemon:
        api = daemon.api
        stop = threading.Event()
        load = threading.Thread(target=self._load, args=(api, stop), daemon=True)
        load.start()
        kill_after = self.rng.uniform(0.1, 2.5)
        time.sleep(kill_after)
        before = _events(api)
        pids_before = {r["id"]: r["pid"] for r in _runners(api) if r["state"] in ACTIVE}
        daemon.kill()
        stop.set()
        load.join()
        down = self.rng.uniform(0.0, 1.0)
        time.sleep(down)
        started = time.perf_counter()
        daemon = self.start()
        recovery = time.perf_counter() - started
        api = daemon.api
        after = _events(api)
        self._check_events(after, before, f"after kill {n + 1}")
        runners = self._settled(api, daemon.root, f"after kill {n + 1}")
        active = {r["id"]: r["pid"] for r in runners if r["state"] in ACTIVE}
        for rid, pid in pids_before.items():
            if rid in active and active[rid] != pid:
                self._violation(
                    f"after kill {n + 1}: runner {rid} has pid {active[rid]}, not {pid}"
                )
        done = self.report.rounds
        done.append(
            Round(
                kill_after_s=round(kill_after, 3),
                active_at_kill=len(pids_before),
                down_s=round(down, 3),
                recovery_s=round(recovery, 3),
                adopted=sum(active.get(rid) == pid for rid, pid in pids_before.items()),
                ended_while_down=sum(rid not in active for rid in pids_before),
                events=after[-1]["id"] if after else 0,
            )
        )
        self.say(f"kill {n + 1} of {self.kills}: {done[-1]}")
        return daemon

    def _load(self, api: ApiClient, stop: threading.Event) -> None:
        """Random requests until ``stop``: launches of short runners, stops of long ones,
        listings. A request cut off by the kill is expected."""
        rng = random.Random(self.rng.random())
        while not stop.is_set():
            action = rng.random()
            with contextlib.suppress(NotRunning, ClientError):
                if action < 0.25:
                    code = rng.randrange(4)
                    self._launch(api, short(rng.uniform(0.2, 3.0), code), code)
                elif action < 0.3:
                    with self.lock:
                        long = [rid for rid, code in self.codes.items() if code is None]
                    if long:
                        api.post(f"/api/v1/runners/{rng.choice(long)}/stop")
                else:
                    api.get("/api/v1/runners")
            stop.wait(rng.uniform(0.01, 0.1))

    def _launch(self, api: ApiClient, command: list[str], code: int | None) -> None:
        runner = api.post("/api/v1/runners", {"project": "chaos", "command": command})
        with self.lock:
            self.codes[runner["id"]] = code

    # --- checks ---------------------------------------------------------------------------
    def _check_events(self, after: list[dict[str, Any]], before: list[dict[str, Any]], when: str):
        ids = [e["id"] for e in after]
        if ids != list(range(1, len(ids) + 1)):
            gaps = sorted(set(range(1, (ids[-1] if ids else 0) + 1)) - set(ids))
            self._violation(f"{when}: event ids are not contiguous (missing {gaps[:10]})")
        if after[: len(before)] != before:
            self._violation(f"{when}: events written before the kill changed or went missing")

    def _settled(self, api: ApiClient, root: Path, when: str) -> list[dict[str, Any]]:
        """The runners, once the API and the processes agree (an exit a moment after the
        listing is not a fault); what still disagrees after SETTLE seconds is a violation."""
        deadline = time.monotonic() + SETTLE
        while True:
            runners = _runners(api)
            problems = _disagreements(runners, _processes(root))
            if not problems:
                return runners
            if time.monotonic() > deadline:
                for problem in problems:
                    self._violation(f"{when}: {problem}")
                return runners
            time.sleep(0.2)

    def _finish(self, api: ApiClient, root: Path, first_event: int) -> None:
        """Short runners end by themselves; then the long ones are stopped; then the checks."""
        deadline = time.monotonic() + 60
        long = [rid for rid, code in self.codes.items() if code is None]
        while any(r["state"] not in FINISHED and r["id"] not in long for r in _runners(api)):
            if time.monotonic() > deadline:
                self._violation("short runners still active a minute after the last kill")
                break
            time.sleep(0.2)
        api.post("/api/v1/runners/stop", {"ids": long})
        while any(r["state"] not in FINISHED for r in _runners(api)):
            if time.monotonic() > deadline:
                self._violation("runners still active a minute after the last kill")
                break
            time.sleep(0.2)
        runners = self._settled(api, root, "at the end")
        self.report.runners = len(runners)
        self.report.launches_cut = sum(r["id"] not in self.codes for r in runners)
        for runner in runners:
            self._check_outcome(runner)
        events = _events(api)
        self._check_events(events, [], "at the end")
        wanted = {e["id"] for e in events if e["id"] > first_event}
        deadline = time.monotonic() + 60
        while not wanted <= (got := _delivered(self.sink)) and time.monotonic() < deadline:
            time.sleep(0.2)
        if missing := sorted(wanted - got):
            self._violation(f"{len(missing)} events never delivered: {missing[:10]}")
        counts = _delivery_counts(self.sink)
        self.report.events = len(wanted)
        self.report.deliveries = sum(counts.values())
        self.report.duplicates = sum(1 for n in counts.values() if n > 1)

    def _check_outcome(self, runner: dict[str, Any]) -> None:
        rid, state, code = runner["id"], runner["state"], runner["exit_code"]
        if rid not in self.codes:  # its launch request was cut off by a kill
            if state not in FINISHED:
                self._violation(f"runner {rid} (launched at a kill) is {state}")
            return
        expected = self.codes[rid]
        if expected is None:
            if state != "stopped":
                self._violation(f"runner {rid} (runs until stopped) is {state}: {runner['reason']}")
        elif (state, code) != ("exited" if expected == 0 else "failed", expected):
            self._violation(
                f"runner {rid} (exits with {expected}) is {state} with exit code {code}: "
                f"{runner['reason']}"
            )

    def _violation(self, text: str) -> None:
        self.report.violations.append(text)
        self.say(f"VIOLATION: {text}")


def _runners(api: ApiClient) -> list[dict[str, Any]]:
    return api.get("/api/v1/runners", all=1)


def _events(api: ApiClient) -> list[dict[str, Any]]:
    """Every event, oldest first."""
    events: list[dict[str, Any]] = []
    while page := api.get("/api/v1/events", since=events[-1]["id"] if events else 0, limit=1000):
        events.extend(page)
    return events


def _processes(root: Path) -> dict[int, set[int]]:
    """Runner id -> pids of live processes started for it on this data dir (from their
    environment: runners inherit the supervisor's, plus their own id)."""
    found: dict[int, set[int]] = {}
    for proc in psutil.process_iter(["environ", "status"]):
        with contextlib.suppress(psutil.Error, ValueError):
            env = proc.info["environ"] or {}
            if (
                env.get("STRATAVORE_HOME") == str(root)
                and "STRATAVORE_RUNNER_ID" in env
                and proc.info["status"] != psutil.STATUS_ZOMBIE
            ):
                found.setdefault(int(env["STRATAVORE_RUNNER_ID"]), set()).add(proc.pid)
    return found


def _disagreements(runners: list[dict[str, Any]], processes: dict[int, set[int]]) -> list[str]:
    problems = []
    for runner in runners:
        rid, state, pid = runner["id"], runner["state"], runner["pid"]
        pids = processes.pop(rid, set())
        if state in ACTIVE and pid not in pids:
            problems.append(f"runner {rid} is {state} with pid {pid}, which is not running")
        elif state not in ACTIVE and pids:
            problems.append(f"runner {rid} is {state} but its processes {sorted(pids)} live on")
    for rid, pids in processes.items():
        problems.append(f"processes {sorted(pids)} of runner {rid} live on, unknown to the API")
    return problems


def _delivery_counts(sink: Sink) -> dict[int, int]:
    counts: dict[int, int] = {}
    for request in list(sink.requests):
        if request.path == "/hook" and request.body:  # a POST cut off by a kill arrives empty
            for event_id in request.json()["event_ids"]:
                counts[event_id] = counts.get(event_id, 0) + 1
    return counts


def _delivered(sink: Sink) -> set[int]:
    return set(_delivery_counts(sink))
