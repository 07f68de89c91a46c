"""Two real supervisors on different data dirs, joined to one real PostgreSQL: the team's
totals equal the sum of their local ledgers after an outage of the server and a kill -9 of a
supervisor. Usage arrives the supervisors' own way (``POST /api/v1/usage``, written through
their write gate); ``stratavore team push`` runs beside them as a separate process."""

from __future__ import annotations

from tests.team.ledgers import team_totals
from tests.team.members import Member, members
from tests.team.pgcluster import Cluster

__all__ = ["members"]  # the fixture (tests/team/members.py)


def _team_matches(pg: Cluster, dbname: str, members: list[Member]) -> None:
    team = team_totals(pg, dbname)
    rows = sum(m.ledger()[0] for m in members)
    tokens = sum(m.ledger()[1] for m in members)
    assert (team["rows"], team["tokens"], team["responses"], team["day_tokens"]) == (
        rows, tokens, rows, tokens,
    )  # fmt: skip
    for member in members:
        assert team_totals(pg, dbname, member.name)["tokens"] == member.ledger()[1]


def test_two_supervisors_show_the_team_the_sum_of_their_ledgers_after_an_outage_and_a_kill(
    pg: Cluster, team_db: str, members: list[Member]
) -> None:
    dbname = team_db.rsplit("/", 1)[1]
    for member in members:
        member.use(200)  # history from before the join
        member.join(team_db)
        member.use(100)  # written by the supervisor after the join installed the triggers
        assert member.team("push").returncode == 0
    _team_matches(pg, dbname, members)

    pg.stop()
    try:
        for member in members:
            member.use(150)
            refused = member.team("push")
            assert refused.returncode == 1 and "cannot be reached" in refused.stderr
    finally:
        pg.start()
    laptop = members[0]
    laptop.use(70)
    laptop.daemon.kill()  # kill -9 of the supervisor, its rows written and queued
    laptop.daemon.start()
    laptop.use(30)
    for member in members:
        pushed = member.team("push")
        assert pushed.returncode == 0, pushed.stderr
    _team_matches(pg, dbname, members)
    assert sum(m.ledger()[0] for m in members) == 2 * 450 + 100
