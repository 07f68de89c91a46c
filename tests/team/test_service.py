"""The supervisor's team job: push, read the team budgets, report thresholds once, and name
the local runners a spent stop budget stops."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from supervisor.storage.models import DB, Event, Project, Runner
from supervisor.team import budgets, membership
from supervisor.team.service import TeamService
from tests.team.conftest import Machine
from tests.team.ledgers import record, rows, team_query
from tests.team.pgcluster import Cluster


def test_a_round_pushes_reports_thresholds_once_and_names_runners_to_stop(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine], tmp_path: Path
) -> None:
    machines("laptop")
    now = time.time()
    with DB.atomic():
        api = Project.create(name="api", path=str(tmp_path), created_at=now)
        runner = Runner.create(project=api, command=["claude"], cwd=str(tmp_path),
                               state="running", created_at=now, token_hash="x")  # fmt: skip
    membership.join(team_db, "alice", password="secret-" + team_db.rsplit("/team_", 1)[1])
    with membership.connected() as db:
        budgets.set_budget(db, "team:project:api", "daily", 10_000, None, action="stop")
    service = TeamService()
    try:
        assert service.run_once().to_stop == {}  # nothing spent yet
        record(rows(5, now - 60, cwd=str(tmp_path)))  # 5 x 3,750 tokens: 187 %
        first = service.run_once()
        assert first.push is not None and first.push.usage == 5 and first.error is None
        assert first.to_stop == {"team:project:api daily": [runner.id]}
        assert [m.rsplit(":", 1)[-1] for m in first.reported] == ["75", "90", "spent"]
        titles = [e.title for e in Event.select().where(Event.type.startswith("budget."))]
        assert titles == [
            "team budget team:project:api daily at 75 %",
            "team budget team:project:api daily at 90 %",
            "team budget team:project:api daily is spent",
        ]
        second = service.run_once()
        assert second.reported == [] and second.push.crossings == 3  # the events went too
        dbname = team_db.rsplit("/", 1)[1]
        assert team_query(pg, dbname, "SELECT count(*) FROM stratavore.crossing") == [(3,)]
    finally:
        service.close()
