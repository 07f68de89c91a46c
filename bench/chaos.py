"""kill -9 chaos under 200 runners: the supervisor, with a webhook channel, killed with SIGKILL
at random moments and started again; every runner adopted or finished with its status, event
ids contiguous, every event delivered at least once, and the time to recover.

The run is ``tests/chaos.py`` (the CI test ``tests/e2e/test_chaos.py`` runs the same with 40
runners): ``--runners`` runners, half ``sleep`` until stopped and half ending by themselves
with a known status at random times over the run; during each of ``--kills`` rounds a load
thread launches short runners, stops long ones and lists them, and the kill lands at a random
moment (0.1-2.5 s into the round). The webhook is the tests' local HTTP sink
(``tests/sink.py``). What ``tests/chaos.py`` checks after each start and at the end is counted
as violations here (0 is the target).

Recovery is the wall time from starting the killed supervisor again until its API serves,
which comes after the full reconcile (every runner adopted or finished). The reference, on
the same machine just before: the same restart after a kill -9 of a supervisor with no runner
at all (``--reference`` times), so the ratio shows what the reconcile of N runners costs.

Run: ``.venv/bin/python bench/chaos.py --runners 200 --kills 10``; writes
``bench/results/chaos.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from typing import Any

from _common import (
    REPO,
    Daemon,
    Table,
    kill_marked,
    machine,
    percentile,
    ratio,
    sigterm_as_interrupt,
    write_results,
)

sys.path.append(str(REPO))  # for tests.chaos and tests.sink (supervisor is the run's copy)

from supervisor.api.client import ApiClient
from tests.chaos import Chaos
from tests.sink import Sink

NO_KEYRING = "keyring.backends.fail.Keyring"  # a webhook without a secret needs none


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runners", type=int, default=200)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--reference", type=int, default=5, help="restarts of an empty supervisor")
    p.add_argument("--seed", type=int, default=None, help="replay a run (default: random)")
    return p.parse_args()


class ChaosDaemon(Daemon):
    """A bench daemon (the run's code copy, marked processes) that starts again on the same
    data dir each time it is called, as ``tests/chaos.py`` wants."""

    def __init__(self, label: str, runners: int) -> None:
        cap = max(runners * 2, 20)
        super().__init__(label, {"max_runners_per_project": cap, "max_runners_global": cap})
        self.env.update(
            {
                "PYTHON_KEYRING_BACKEND": NO_KEYRING,
                "CLAUDE_CONFIG_DIR": str(self.home / "claude"),  # no import of the user's logs
                "CODEX_HOME": str(self.home / "codex"),
            }
        )
        self.root = self.home
        self.client: ApiClient | None = None

    def __enter__(self) -> ChaosDaemon:
        return self  # started by calling it

    def __call__(self) -> ChaosDaemon:
        self.start()
        self.client = ApiClient(self.url, self.token, timeout=60)
        return self

    @property
    def api(self) -> ApiClient:
        assert self.client is not None
        return self.client

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


def reference(times: int) -> list[float]:
    """Seconds to restart a supervisor with no runner after a kill -9, ``times`` times."""
    walls = []
    with ChaosDaemon("chaos-reference", 0) as daemon:
        daemon()
        for _ in range(times):
            daemon.kill()
            started = time.perf_counter()
            daemon()
            walls.append(time.perf_counter() - started)
    return walls


def run(args: argparse.Namespace) -> dict[str, Any]:
    empty = reference(args.reference)
    print(f"reference: an empty supervisor restarts in {statistics.median(empty):.3f} s")
    with ChaosDaemon("chaos", args.runners) as daemon, Sink() as sink:
        project = daemon.home / "project"  # removed with the data dir
        project.mkdir()
        chaos = Chaos(daemon, project, sink, args.runners, args.kills, args.seed, say=print)
        report = chaos.run()
    return {"reference_restart_s": empty, **dataclasses.asdict(report)}


def tables(result: dict[str, Any]) -> list[Table]:
    rounds = result["rounds"]
    empty = statistics.median(result["reference_restart_s"])
    per_kill = Table(
        "Each kill -9 (recovery: restart until the API serves, after the full reconcile)",
        ["kill", "at (s)", "active at kill", "down (s)", "recovery (s)", "vs empty", "adopted",
         "ended while down", "events so far"],
        [
            [n, r["kill_after_s"], r["active_at_kill"], r["down_s"], r["recovery_s"],
             ratio(r["recovery_s"], empty), r["adopted"], r["ended_while_down"], r["events"]]
            for n, r in enumerate(rounds, 1)
        ],
    )  # fmt: skip
    recoveries = [r["recovery_s"] for r in rounds]
    summary = Table(
        f"Summary (seed {result['seed']})",
        ["what", "value"],
        [
            ["runners (incl. launched during the run)", result["runners"]],
            ["launch requests cut off by a kill", result["launches_cut"]],
            ["runners adopted across kills (sum)", sum(r["adopted"] for r in rounds)],
            ["runners that ended while down (sum)", sum(r["ended_while_down"] for r in rounds)],
            ["events written after the channel was added", result["events"]],
            ["webhook deliveries received", result["deliveries"]],
            ["events received more than once", result["duplicates"]],
            ["recovery p50 / max (s)", f"{percentile(recoveries, 50):.2f} / {max(recoveries):.2f}"],
            ["empty supervisor's restart, median (s)", round(empty, 3)],
            ["violations", len(result["violations"])],
        ],
    )
    return [per_kill, summary]


def main() -> int:
    args = parse_args()
    with sigterm_as_interrupt():
        try:
            result = run(args)
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            kill_marked()
    rendered = tables(result)
    for table in rendered:
        print(table.render() + "\n")
    for violation in result["violations"]:
        print(f"violation: {violation}")
    payload = {
        "machine": machine(),
        "options": vars(args),
        "results": result,
        "tables": [t.render() for t in rendered],
    }
    print(f"wrote {write_results('chaos', payload)}", file=sys.stderr)
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
