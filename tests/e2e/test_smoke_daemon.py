from tests.conftest import SLEEP


def test_launch_and_stop(daemon, project_dir):
    daemon.project("demo", project_dir)
    runner = daemon.launch("demo", SLEEP)
    daemon.wait_state(runner["id"], "running")
    daemon.api.post(f"/api/v1/runners/{runner['id']}/stop")
    assert daemon.wait_state(runner["id"], "stopped")["exit_code"] == 143
