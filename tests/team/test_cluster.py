"""The test cluster itself: it answers over TCP with a password only, and stops and starts
again (what the outage tests rely on)."""

from __future__ import annotations

import os
import subprocess

from tests.team.pgcluster import SUPERUSER_PASSWORD, Cluster


def _tcp_psql(pg: Cluster, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(pg.bin / "psql"), pg.url(), "-qAtc", "SELECT current_user"],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "3"},
    )  # fmt: skip


def test_cluster_answers_over_loopback_with_a_password(pg: Cluster) -> None:
    assert _tcp_psql(pg, SUPERUSER_PASSWORD).stdout.strip() == "postgres"
    refused = _tcp_psql(pg, "wrong")
    assert refused.returncode != 0
    assert "password authentication failed" in refused.stderr


def test_cluster_stops_and_starts_again(pg: Cluster) -> None:
    pg.stop()
    assert not pg.running()
    assert _tcp_psql(pg, SUPERUSER_PASSWORD).returncode != 0
    pg.start()
    assert pg.running()
    assert pg.psql("SELECT 1") == "1"
