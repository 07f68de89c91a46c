"""Team reports in SQL on the server: per day in the team's zone, by member, project, model;
equal to what the members' own ledgers say."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from supervisor.storage.models import DB, Project
from supervisor.team import budgets, membership, push, reports
from supervisor.team.server import TeamError
from tests.team.conftest import Machine
from tests.team.ledgers import OPUS, SONNET, record, rows

START = datetime(2026, 3, 7, 20, 0, tzinfo=ZoneInfo("UTC")).timestamp()  # across a DST change


def _tokens_by_day(zone: ZoneInfo, key: Callable[[str, str], str]) -> Counter:
    """Tokens per (local day, group) from the bound local ledger."""
    found: Counter = Counter()
    for ts, model, project, tokens in DB.execute_sql(
        "SELECT u.ts, u.model, p.name, u.input_tokens + u.output_tokens + "
        'u.cache_creation_tokens + u.cache_read_tokens FROM "usage" u '
        "LEFT JOIN project p ON p.id = u.project_id"
    ):
        day = datetime.fromtimestamp(ts, zone).date().isoformat()
        found[day, key(model, project)] += tokens
    return found


def _machine(machines: Callable[[str], Machine], name: str, who: str, project: str,
             model: str, team_db: str, tmp_path: Path) -> Counter:  # fmt: skip
    machines(name)
    folder = tmp_path / f"{name}-{project}"
    folder.mkdir()
    with DB.atomic():
        Project.create(name=project, path=str(folder), created_at=START)
    membership.join(team_db, who, password="secret-" + team_db.rsplit("/team_", 1)[1])
    # every 7 minutes for 3 days, plus some with no project
    record(rows(3 * 24 * 60 // 7, START, step=420, model=model, cwd=str(folder), prefix=name))
    record(rows(40, START + 3600, step=1800, model=model, prefix=f"{name}-loose"))
    push.push_now()
    zone = ZoneInfo("America/New_York")
    return _tokens_by_day(zone, lambda _m, _p: who)


def test_daily_by_member_project_and_model_in_the_teams_zone(
    team_db: str, machines: Callable[[str], Machine], tmp_path: Path
) -> None:
    expected = _machine(machines, "laptop", "alice", "api", SONNET, team_db, tmp_path)
    expected += _machine(machines, "box", "bob", "web", OPUS, team_db, tmp_path)
    with membership.connected() as db:
        budgets.set_zone(db, "America/New_York")
        by_member = reports.report(db, "daily", by="member")
        by_project = reports.report(db, "daily", by="project", since=date(2026, 3, 8),
                                    until=date(2026, 3, 8))  # fmt: skip
        by_model = reports.report(db, "monthly", by="model", zone="UTC")
        plain = reports.report(db, "daily")
    assert by_member["zone"] == "America/New_York"
    got = Counter({(r["date"], r["group"]): r["total_tokens"] for r in by_member["rows"]})
    assert got == expected
    assert by_member["totals"]["total_tokens"] == plain["totals"]["total_tokens"]
    assert [r["date"] for r in plain["rows"]] == sorted({day for day, _ in expected})
    assert {r["date"] for r in by_project["rows"]} == {"2026-03-08"}
    assert [r["group"] for r in by_project["rows"]] == ["api", "web", None]  # None: no project
    assert [(r["month"], r["group"]) for r in by_model["rows"]] == [
        ("2026-03-01", OPUS), ("2026-03-01", SONNET),
    ]  # fmt: skip
    assert plain["totals"]["responses"] == 2 * (3 * 24 * 60 // 7 + 40)
    # pushed after the zone changed: counted in the new zone's days too
    record(rows(200, START + 2 * 86400, step=97, model=OPUS, prefix="box-later"))
    push.push_now()
    expected += _tokens_by_day(ZoneInfo("America/New_York"), lambda _m, _p: "bob") - Counter(
        {k: v for k, v in expected.items() if k[1] == "bob"}
    )
    with membership.connected() as db:
        again = reports.report(db, "daily", by="member")
    assert Counter({(r["date"], r["group"]): r["total_tokens"] for r in again["rows"]}) == expected


@pytest.mark.parametrize(
    ("team_zone", "zone", "since", "until"),
    [
        ("America/New_York", "Asia/Kolkata", None, None),  # the team's days, moved 9:30/10:30
        ("America/New_York", "Pacific/Kiritimati", date(2026, 3, 8), date(2026, 3, 9)),
        ("Pacific/Pago_Pago", "Pacific/Kiritimati", None, None),  # 25 h apart: every bucket
    ],
)
def test_a_report_in_another_zone_has_that_zones_days_across_a_dst_change(
    team_db: str, machines: Callable[[str], Machine], tmp_path: Path,
    team_zone: str, zone: str, since: date | None, until: date | None,
) -> None:  # fmt: skip
    _machine(machines, "laptop", "alice", "api", SONNET, team_db, tmp_path)
    expected = _tokens_by_day(ZoneInfo(zone), lambda _m, _p: "alice")
    if since and until:
        expected = Counter({k: v for k, v in expected.items() if since.isoformat() <= k[0]
                            <= until.isoformat()})  # fmt: skip
    with membership.connected() as db:
        budgets.set_zone(db, team_zone)
        found = reports.report(db, "daily", by="member", zone=zone, since=since, until=until)
    assert found["zone"] == zone
    assert Counter({(r["date"], r["group"]): r["total_tokens"] for r in found["rows"]}) == expected
    assert found["totals"]["responses"] == (
        sum(r["responses"] for r in found["rows"]) if since else 3 * 24 * 60 // 7 + 40
    )


def test_bad_report_arguments_are_refused_in_one_sentence(
    team_db: str, machines: Callable[[str], Machine]
) -> None:
    machines("laptop")
    membership.join(team_db, "alice", password="secret-" + team_db.rsplit("/team_", 1)[1])
    with membership.connected() as db:
        with pytest.raises(TeamError, match="--by takes one of member, project, model, agent"):
            reports.report(db, by="colour")
        with pytest.raises(TeamError, match="does not know the time zone 'Mars/Base'"):
            reports.report(db, zone="Mars/Base")
        with pytest.raises(TeamError, match="is not one of daily, weekly, monthly"):
            reports.report(db, "blocks")
