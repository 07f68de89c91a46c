"""kill -9 chaos under load, in CI: ``tests/chaos.py`` scaled down to 40 runners and 10 kills
(``bench/chaos.py`` runs the 200-runner version and reports its figures)."""

from __future__ import annotations

import pytest

from tests.chaos import Chaos
from tests.sink import Sink


@pytest.mark.slow
def test_kill_9_at_random_moments_keeps_every_runner_and_event(daemon_factory, project_dir):
    with Sink() as sink:
        chaos = Chaos(daemon_factory, project_dir, sink, runners=40, kills=10, say=print)
        report = chaos.run()
    assert report.violations == [], f"chaos seed {report.seed} (Chaos(..., seed=...) replays it)"
    assert len(report.rounds) == 10
    # the run did what it is for: runners adopted across kills, and runners that ended unseen
    assert sum(r.adopted for r in report.rounds) >= 10 * 10
    assert sum(r.ended_while_down for r in report.rounds) > 0
    assert report.events > 40 * 2
