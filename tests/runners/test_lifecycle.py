"""The runner state machine driven through RunnerManager with real child processes.

Each test names the transitions it shows. The manager runs on a real asyncio loop; its clock is
injectable (``Clock`` runs with real time plus an offset the test can advance), so restart
windows and TTLs are tested without sleeping through them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.api.schemas import Heartbeat, Launch
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.settings import Settings
from supervisor.core.states import FINISHED_STATES, TRANSITIONS, RunnerState, check_transition
from supervisor.runners.exits import backoff_delay
from supervisor.runners.manager import RunnerManager
from supervisor.runners.process import ProcessOps
from supervisor.runners.procinfo import Identity
from supervisor.runners.tokens import hash_token
from supervisor.storage.db import close_db, init_db
from supervisor.storage.models import Event, Project, Runner
from tests.conftest import run_async, wait_for
from tests.runners.test_signals import needs_root, start_at_pid

PY = sys.executable


OPEN: list[RunnerManager] = []  # managers made in the running test, shut down in its loop


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        async def run() -> None:
            try:
                await fn(*args, **kwargs)
            finally:
                while OPEN:
                    OPEN.pop().shutdown()
                await asyncio.sleep(0)  # let the cancelled tasks finish on this loop

        run_async(run())

    return wrapper


class Clock:
    """Real time plus an offset a test advances."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Harness:
    def __init__(self, root: Path, ops: ProcessOps | None = None, **settings: Any) -> None:
        self.root = root
        base = Settings(start_secs=0.2, stop_timeout=2.0, backoff_initial=0.01)
        self.clock = Clock()
        self.manager = RunnerManager(
            root, base.with_overrides(**settings), ops=ops, clock=self.clock
        )
        OPEN.append(self.manager)
        self.project = Project.create(name="demo", path=str(root), created_at=0)

    async def launch(self, command: list[str], project: str = "demo", **fields: Any) -> int:
        return (await self.manager.launch(Launch(project=project, command=command, **fields))).id

    @staticmethod
    def runner(runner_id: int) -> Runner:
        return Runner.get_by_id(runner_id)

    async def until(self, runner_id: int, *states: RunnerState, timeout: float = 10) -> Runner:
        deadline = time.monotonic() + timeout
        while True:
            self.manager.reap()
            runner = self.runner(runner_id)
            if RunnerState(runner.state) in states:
                return runner
            if time.monotonic() > deadline:
                pytest.fail(f"runner {runner_id} is {runner.state}, wanted {states}")
            await asyncio.sleep(0.02)

    @staticmethod
    def history(runner_id: int) -> list[tuple[str | None, str]]:
        rows = Event.select().where(Event.runner_id == runner_id).order_by(Event.id)
        return [(e.data["previous"], e.data["state"]) for e in rows if "previous" in e.data]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    init_db(tmp_path / "stratavore.db")
    made: list[Harness] = []

    def make(**settings: Any) -> Harness:
        made.append(Harness(tmp_path, **settings))
        return made[-1]

    yield make
    OPEN.clear()  # a sync test's managers never ran a loop: nothing to shut down
    for runner in Runner.select():  # no process outlives its test
        if runner.pid and runner.supervised:
            with contextlib.suppress(OSError):
                os.killpg(runner.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(runner.pid, 0)
    close_db()


def exits_with(code: int, after: float = 0.0) -> list[str]:
    return [PY, "-c", f"import time, sys; time.sleep({after}); sys.exit({code})"]


SLEEP = [PY, "-c", "import time; time.sleep(600)"]


# --- the table itself ----------------------------------------------------------------------------
def test_transition_table_allows_exactly_the_listed_moves() -> None:
    for old in RunnerState:
        for new in RunnerState:
            if new in TRANSITIONS[old]:
                check_transition(old, new)
            else:
                with pytest.raises(Exception, match=f"from {old} to {new}"):
                    check_transition(old, new)


def test_backoff_delay_grows_by_half_and_is_capped() -> None:
    assert [backoff_delay(n, 1.0, 5.0) for n in range(6)] == [1.0, 1.0, 1.5, 2.25, 3.375, 5.0]


# --- launch, start window, exits -----------------------------------------------------------------
@async_test
async def test_transition_starting_to_running_to_exited(harness) -> None:
    h = harness()
    rid = await h.launch(exits_with(0, after=0.5))
    await h.until(rid, RunnerState.RUNNING)
    runner = await h.until(rid, RunnerState.EXITED)
    assert runner.exit_code == 0 and runner.reason == "exited with status 0"
    assert h.history(rid) == [(None, "starting"), ("starting", "running"), ("running", "exited")]


@async_test
async def test_transition_running_to_failed_with_unexpected_code(harness) -> None:
    h = harness()
    rid = await h.launch(exits_with(3, after=0.4))
    runner = await h.until(rid, RunnerState.FAILED)
    assert (runner.exit_code, runner.reason) == (3, "exited with status 3")
    assert h.history(rid)[-1] == ("running", "failed")


@async_test
async def test_transition_starting_to_exited_and_to_failed_inside_start_window(harness) -> None:
    h = harness(start_secs=5)
    ok, bad = await h.launch(exits_with(0)), await h.launch(exits_with(1))
    await h.until(ok, RunnerState.EXITED)
    await h.until(bad, RunnerState.FAILED)
    assert h.history(ok)[-1] == ("starting", "exited")
    assert h.history(bad)[-1] == ("starting", "failed")


@async_test
async def test_spawn_error_fails_the_launch_with_a_sentence(harness, tmp_path) -> None:
    class BrokenOps(ProcessOps):
        def spawn(self, *args: Any, **kwargs: Any) -> Any:
            raise OSError(24, "Too many open files")

    h = harness(ops=BrokenOps())
    rid = await h.launch(SLEEP)
    runner = h.runner(rid)
    assert runner.state == "failed"
    assert runner.reason == "could not start: [Errno 24] Too many open files"


@async_test
async def test_unknown_command_fails_at_once_naming_the_search_path(harness) -> None:
    h = harness()
    with pytest.raises(ApiError) as info:
        await h.launch(["claude-not-installed"])
    assert info.value.code is ErrorCode.COMMAND_NOT_FOUND
    assert info.value.message.startswith(
        "command 'claude-not-installed' not found on PATH (searched: "
    )
    assert Runner.select().count() == 0


@async_test
async def test_runner_environment_carries_id_token_and_api(harness, tmp_path) -> None:
    h = harness()
    h.manager.set_api_url("http://127.0.0.1:9")
    out = tmp_path / "env.txt"
    script = (
        f"import os; open({str(out)!r}, 'w').write(' '.join(os.environ[k] for k in "
        "('STRATAVORE_RUNNER_ID', 'STRATAVORE_API')) + ' ' + os.getcwd() + ' ' + "
        "str(len(os.environ['STRATAVORE_RUNNER_TOKEN'])))"
    )
    rid = await h.launch([PY, "-c", script])
    await h.until(rid, RunnerState.EXITED)
    assert out.read_text() == f"{rid} http://127.0.0.1:9 {tmp_path} 32"


# --- restart policies and backoff ----------------------------------------------------------------
@async_test
async def test_transition_starting_to_backoff_to_fatal_after_max_retries(harness) -> None:
    h = harness(start_secs=5, max_retries=2, backoff_initial=0.05)
    rid = await h.launch(exits_with(2), restart="on-failure")
    runner = await h.until(rid, RunnerState.FATAL)
    assert runner.reason == (
        "gave up: exited too quickly 3 times in a row (last: exited with status 2)"
    )
    assert runner.restarts == 2
    assert h.history(rid) == [
        (None, "starting"),
        ("starting", "backoff"),
        ("backoff", "starting"),
        ("starting", "backoff"),
        ("backoff", "starting"),
        ("starting", "fatal"),
    ]
    delays = [e.data["delay"] for e in Event.select().where(Event.type == "runner.backoff")]
    assert delays == [0.05, 0.075]  # x1.5 per quick exit


@async_test
async def test_transition_running_to_backoff_resets_quick_exit_count(harness) -> None:
    h = harness(start_secs=0.1, backoff_initial=0.05, max_retries=1)
    rid = await h.launch(exits_with(1, after=0.3), restart="on-failure")
    await h.until(rid, RunnerState.BACKOFF)
    runner = h.runner(rid)
    assert runner.early_exits == 0
    assert runner.reason == "exited with status 1; restarting in 0.05 s"
    await h.until(rid, RunnerState.RUNNING)  # a run that lasted never makes it fatal
    await h.until(rid, RunnerState.BACKOFF)
    assert h.runner(rid).restarts >= 1
    h.manager.stop(rid)
    await h.until(rid, RunnerState.STOPPED)


@async_test
async def test_on_failure_does_not_restart_a_clean_exit_but_always_does(harness) -> None:
    h = harness(backoff_initial=0.05)
    clean = await h.launch(exits_with(0, after=0.3), restart="on-failure")
    # each run of `again` lasts 2 s: long enough that, on a loaded machine, its second run
    # has not ended (and restarted a second time) before it is looked at
    again = await h.launch(exits_with(0, after=2.0), restart="always")
    await h.until(clean, RunnerState.EXITED)
    await h.until(again, RunnerState.BACKOFF)
    await h.until(again, RunnerState.STARTING, RunnerState.RUNNING)
    assert h.runner(again).restarts == 1


@async_test
async def test_transition_backoff_to_stopped_at_once(harness) -> None:
    h = harness(start_secs=5, backoff_initial=30)
    rid = await h.launch(exits_with(1), restart="always")
    await h.until(rid, RunnerState.BACKOFF)
    h.manager.stop(rid)
    assert h.runner(rid).state == "stopped"
    assert h.history(rid)[-1] == ("backoff", "stopped")


# --- stop ----------------------------------------------------------------------------------------
GRANDCHILDREN = r"""
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN if sys.argv[1] == "stubborn" else signal.SIG_DFL)
ignore = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
same_group = subprocess.Popen([sys.executable, "-c", ignore])
own_session = subprocess.Popen([sys.executable, "-c", ignore], start_new_session=True)
open(sys.argv[2], "w").write(f"{same_group.pid} {own_session.pid}")
time.sleep(600)
"""


@pytest.mark.parametrize("parent", ["polite", "stubborn"])
@async_test
async def test_stop_kills_grandchildren_even_in_their_own_session(harness, tmp_path, parent):
    h = harness(stop_timeout=0.5)
    pids_file = tmp_path / "pids"
    rid = await h.launch([PY, "-c", GRANDCHILDREN, parent, str(pids_file)])
    await h.until(rid, RunnerState.RUNNING)
    await asyncio.sleep(0)
    for _ in range(200):
        if pids_file.exists() and pids_file.read_text():
            break
        await asyncio.sleep(0.02)
    grandchildren = [psutil.Process(int(p)) for p in pids_file.read_text().split()]
    h.manager.stop(rid)
    assert h.runner(rid).state == "stopping"
    runner = await h.until(rid, RunnerState.STOPPED)
    assert h.history(rid)[-2:] == [("running", "stopping"), ("stopping", "stopped")]
    _, alive = psutil.wait_procs(grandchildren, timeout=3)
    assert alive == []
    if parent == "stubborn":
        assert runner.reason == "stopped by user (killed after the 0.5 s stop timeout)"
        assert runner.exit_code == 128 + signal.SIGKILL
    else:
        assert runner.reason == "stopped by user"
        assert runner.exit_code == 128 + signal.SIGTERM


@async_test
async def test_force_stop_kills_at_once(harness) -> None:
    h = harness(stop_timeout=60)
    rid = await h.launch([PY, "-c", "import signal, time; signal.signal(15, 1); time.sleep(600)"])
    await h.until(rid, RunnerState.RUNNING)
    started = time.monotonic()
    h.manager.stop(rid, force=True)
    await h.until(rid, RunnerState.STOPPED)
    assert time.monotonic() - started < 5


@async_test
async def test_stop_of_a_finished_runner_is_a_conflict(harness) -> None:
    h = harness(start_secs=5)
    rid = await h.launch(SLEEP)
    h.manager.stop(rid)
    await h.until(rid, RunnerState.STOPPED)
    with pytest.raises(ApiError) as info:
        h.manager.stop(rid)
    assert info.value.code is ErrorCode.CONFLICT
    assert info.value.message == f"Runner {rid} is not running (it is stopped)."


@async_test
async def test_transition_starting_to_stopping(harness) -> None:
    h = harness(start_secs=30)
    rid = await h.launch(SLEEP)
    h.manager.stop(rid)
    await h.until(rid, RunnerState.STOPPED)
    assert h.history(rid) == [(None, "starting"), ("starting", "stopping"), ("stopping", "stopped")]


# --- stopping many ------------------------------------------------------------------------------
# The command leaves a grandchild in a session of its own: the group's SIGTERM does not reach
# it, only the tree taken at the stop does (sleep's own SIGTERM ends the command's sleep).
WITH_GRANDCHILD = ["sh", "-c", "setsid sleep 600 & sleep 600"]


def _stop_events(runner_id: int) -> list[Event]:
    rows = Event.select().where(Event.runner_id == runner_id).order_by(Event.id)
    return [e for e in rows if e.data.get("state") in ("stopping", "stopped")]


@async_test
async def test_bulk_stop_ends_every_tree_with_one_stopping_and_one_stopped_event_each(
    harness, caplog
) -> None:
    """50 runners with a grandchild each, stopped by one stop_many: no process of any of
    them is left, each runner has exactly one stopping and one stopped event, written with
    its row's change (the same instant), and the log has a line per batch, not per runner."""
    h = harness(start_secs=0, stop_timeout=5, max_runners_per_project=50, max_runners_global=50)
    ids = [await h.launch(WITH_GRANDCHILD) for _ in range(50)]
    for rid in ids:
        await h.until(rid, RunnerState.RUNNING)
    trees: list[psutil.Process] = []
    for rid in ids:
        root = psutil.Process(h.runner(rid).pid)
        for _ in range(250):  # the command, its sleep and the grandchild
            if len(root.children(recursive=True)) == 3:
                break
            await asyncio.sleep(0.02)
        trees += [root, *root.children(recursive=True)]
    assert len(trees) == 50 * 4
    with caplog.at_level(logging.INFO, "stratavore.runners"):
        rows = h.manager.stop_many(ids)
        assert {row.state for row in rows} == {"stopping"}
        for rid in ids:
            await h.until(rid, RunnerState.STOPPED)
    _, alive = psutil.wait_procs(trees, timeout=3)
    assert alive == []
    for rid in ids:
        runner = h.runner(rid)
        stopping, stopped = _stop_events(rid)
        assert (stopping.data["previous"], stopping.data["state"]) == ("running", "stopping")
        assert stopping.ts == runner.stop_requested_at
        assert (stopped.data["previous"], stopped.data["state"]) == ("stopping", "stopped")
        assert stopped.ts == runner.ended_at
        assert stopped.data["exit_code"] == runner.exit_code == 128 + signal.SIGTERM
        assert runner.reason == "stopped by user"
    lines = [r.getMessage() for r in caplog.records]
    assert lines.count("stopping: 50 runners") == 1
    assert not [line for line in lines if line.startswith("stopping: runner")]
    # the ends are recorded in as many batches as the loop saw them come in
    assert sum(line.startswith("stopped: ") for line in lines) < 25


@needs_root
@async_test
async def test_bulk_stop_spares_a_process_of_ours_given_a_runners_pid_before_the_stop(
    harness,
) -> None:
    """A runner's root ended unseen and its pid went to another child of this process (a
    session leader: the old group id is its) before a stop of it and another runner: the
    other runner stops, the stranger is neither signalled nor waited for in its place, and
    the runner ends stopped."""
    h = harness(start_secs=0, stop_timeout=1)
    reused, other = await h.launch(SLEEP), await h.launch(SLEEP)
    pid = (await h.until(reused, RunnerState.RUNNING)).pid
    await h.until(other, RunnerState.RUNNING)
    # Ended and reaped here, between two turns of the loop: the supervisor has not seen it.
    os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    wait_for(lambda: not _group_alive(pid), what="the runner's group to end")
    time.sleep(0.05)  # create times count clock ticks: the stranger starts ticks later
    stranger = start_at_pid(pid, ["sleep", "600"])
    try:
        h.manager.stop_many([reused, other])
        runner = await h.until(reused, RunnerState.STOPPED)
        assert runner.exit_code is None
        assert (await h.until(other, RunnerState.STOPPED)).exit_code == 128 + signal.SIGTERM
        await asyncio.sleep(1.5)  # past the stop timeout: a kill would have landed
        assert stranger.poll() is None, "the stop killed (or reaped) a stranger"
    finally:
        stranger.kill()
        stranger.wait()


@async_test
async def test_stops_asked_in_one_turn_are_recorded_together_each_answered(harness) -> None:
    """N stop requests at once (stop_soon): each running runner moves to stopping once, with
    one event; a second ask of one is answered with it, an ended one with a conflict."""
    h = harness(start_secs=0, max_runners_per_project=20, max_runners_global=20)
    ids = [await h.launch(SLEEP) for _ in range(12)]
    ended = await h.launch(exits_with(0))
    for rid in ids:
        await h.until(rid, RunnerState.RUNNING)
    await h.until(ended, RunnerState.EXITED)
    asks = [h.manager.stop_soon(rid) for rid in [*ids, ids[0]]]
    answers = await asyncio.gather(*asks, h.manager.stop_soon(ended), return_exceptions=True)
    assert [a.state if isinstance(a, Runner) else a for a in answers[:-1]] == ["stopping"] * 13
    conflict = answers[-1]
    assert isinstance(conflict, ApiError) and conflict.code is ErrorCode.CONFLICT
    for rid in ids:
        await h.until(rid, RunnerState.STOPPED)
        assert h.history(rid)[-2:] == [("running", "stopping"), ("stopping", "stopped")]
        assert len(_stop_events(rid)) == 2


@async_test
async def test_stop_everything_returns_once_its_runners_ended_not_at_the_stop_timeout(
    harness,
) -> None:
    """The supervisor's stop with its runners (``stop_everything``) waits for them to end;
    their batch's deadline, far off, is not waited for."""
    h = harness(start_secs=0, stop_timeout=60)
    ids = [await h.launch(SLEEP) for _ in range(3)]
    for rid in ids:
        await h.until(rid, RunnerState.RUNNING)
    await asyncio.wait_for(h.manager.stop_everything(), 15)
    assert {h.runner(rid).state for rid in ids} == {"stopped"}


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# --- killed from outside -------------------------------------------------------------------------
@pytest.mark.parametrize("victim", ["trampoline", "command"])
@async_test
async def test_runner_killed_with_sigkill_is_failed(harness, victim) -> None:
    h = harness()
    rid = await h.launch(SLEEP)
    runner = await h.until(rid, RunnerState.RUNNING)
    root = psutil.Process(runner.pid)
    command = root.children()[0]
    (root if victim == "trampoline" else command).kill()
    runner = await h.until(rid, RunnerState.FAILED, timeout=3)
    assert runner.reason == "was killed by SIGKILL"
    assert runner.exit_code == 137
    psutil.wait_procs([command], timeout=3)
    assert not command.is_running()  # the command never outlives its runner


# --- unresponsive --------------------------------------------------------------------------------
@async_test
async def test_stopped_process_is_flagged_unresponsive_not_killed(harness) -> None:
    h = harness()
    rid = await h.launch(SLEEP)
    runner = await h.until(rid, RunnerState.RUNNING)
    os.killpg(runner.pid, signal.SIGSTOP)
    try:
        # the kernel stops a sleeping process when it next runs: later, on a loaded machine
        wait_for(
            lambda: psutil.Process(runner.pid).status() == psutil.STATUS_STOPPED,
            what="the runner's process to be stopped",
        )
        await h.manager.sweep()
        assert h.runner(rid).unresponsive is True
        await h.manager.sweep()  # flagged once, not once per sweep
        assert Event.select().where(Event.type == "runner.unresponsive").count() == 1
        assert psutil.Process(runner.pid).is_running()
    finally:
        os.killpg(runner.pid, signal.SIGCONT)
    await h.manager.sweep()
    assert h.runner(rid).unresponsive is False
    assert Event.select().where(Event.type == "runner.responsive").count() == 1
    assert h.runner(rid).state == "running"


@async_test
async def test_silent_heartbeat_runner_is_flagged_after_the_ttl(harness) -> None:
    h = harness(heartbeat_ttl=30)
    rid = await h.launch(SLEEP)
    await h.until(rid, RunnerState.RUNNING)
    h.manager.heartbeats.last_seen[rid] = h.clock()  # it heartbeats, as an agent would
    h.clock.advance(29)
    await h.manager.sweep()
    assert h.runner(rid).unresponsive is False
    h.clock.advance(2)
    await h.manager.sweep()
    runner = h.runner(rid)
    assert runner.unresponsive is True and runner.state == "running"
    event = Event.select().where(Event.type == "runner.unresponsive").get()
    assert event.body == "no heartbeat for 31 s (TTL 30 s)"


def test_heartbeat_with_the_wrong_token_is_refused(harness) -> None:
    async def go() -> None:
        h = harness()
        rid = await h.launch(SLEEP)
        with pytest.raises(ApiError) as info:
            h.manager.heartbeat(rid, "not-the-token", Heartbeat())
        assert info.value.code is ErrorCode.UNAUTHORIZED

    run_async(go())


# --- caps and queue ------------------------------------------------------------------------------
@async_test
async def test_queue_is_fifo_and_respects_project_and_global_caps(harness, tmp_path) -> None:
    h = harness(max_runners_global=2, start_secs=5)
    h.project.max_runners = 1
    h.project.save()
    other = tmp_path / "other"
    other.mkdir()
    Project.create(name="other", path=str(other), created_at=0)
    a1, a2, a3 = [await h.launch(SLEEP) for _ in range(3)]
    b1, b2 = [await h.launch(SLEEP, project="other") for _ in range(2)]
    states = [h.runner(r).state for r in (a1, a2, a3, b1, b2)]
    assert states == ["starting", "queued", "queued", "starting", "queued"]
    assert h.runner(a2).reason == (
        "Project 'demo' already has 1 of 1 runners; stop one or raise the cap "
        "with `stratavore set max_runners_per_project N --project demo`."
    )
    h.manager.stop(a1)
    await h.until(a1, RunnerState.STOPPED)
    assert [h.runner(r).state for r in (a2, a3, b2)] == ["starting", "queued", "queued"]
    h.manager.stop(b1)
    await h.until(b1, RunnerState.STOPPED)
    assert [h.runner(r).state for r in (a3, b2)] == ["queued", "starting"]
    assert h.history(a2)[:2] == [(None, "queued"), ("queued", "starting")]


def test_no_queue_launch_over_a_cap_is_refused_naming_the_cap(harness) -> None:
    async def go() -> None:
        h = harness(max_runners_global=1)
        await h.launch(SLEEP)
        with pytest.raises(ApiError) as info:
            await h.launch(SLEEP, no_queue=True)
        assert info.value.code is ErrorCode.CAP_REACHED
        assert info.value.message == (
            "1 of 1 runners are active; stop one or raise the cap with "
            "`stratavore set max_runners_global N`."
        )
        assert Runner.select().count() == 1

    run_async(go())


@async_test
async def test_a_queued_runner_that_cannot_be_spawned_starts_the_next_one_once(harness) -> None:
    """A raised cap starts the queued runners; one that cannot be spawned frees its slot for
    the next, which the same pass must not try to start a second time."""

    class CannotStartOne(ProcessOps):
        def spawn(self, command: list[str], *args: Any, **kwargs: Any) -> Any:
            if command[-1] == "cannot-start":
                raise OSError(24, "Too many open files")
            return super().spawn(command, *args, **kwargs)

    h = harness(ops=CannotStartOne(), max_runners_global=1, start_secs=5)
    first = await h.launch(SLEEP)
    broken, second = await h.launch([PY, "-c", "pass", "cannot-start"]), await h.launch(SLEEP)
    h.manager.set_setting("max_runners_global", 3)
    states = [h.runner(r).state for r in (first, broken, second)]
    assert states == ["starting", "failed", "starting"]
    assert h.history(second) == [(None, "queued"), ("queued", "starting")]


@async_test
async def test_transition_queued_to_stopped_at_once(harness) -> None:
    h = harness(max_runners_global=1, start_secs=5)
    await h.launch(SLEEP)
    queued = await h.launch(SLEEP)
    h.manager.stop(queued)
    assert h.history(queued) == [(None, "queued"), ("queued", "stopped")]


# --- restart by the user -------------------------------------------------------------------------
@pytest.mark.parametrize("finished", sorted(FINISHED_STATES - {RunnerState.LOST}))
@async_test
async def test_transition_finished_to_starting_on_restart(harness, finished) -> None:
    h = harness(start_secs=5, max_retries=0)
    command = {
        "stopped": SLEEP,
        "exited": exits_with(0),
        "failed": exits_with(1),
        "fatal": exits_with(1),
    }[finished]
    rid = await h.launch(command, restart="on-failure" if finished == "fatal" else None)
    if finished == "stopped":
        h.manager.stop(rid)
    await h.until(rid, RunnerState(finished))
    await h.manager.restart(rid)
    runner = h.runner(rid)
    assert (runner.state, runner.restarts, runner.exit_code) == ("starting", 1, None)
    assert h.history(rid)[-1] == (finished, "starting")


@async_test
async def test_transition_finished_to_queued_on_restart_over_a_cap(harness) -> None:
    h = harness(max_runners_global=1, start_secs=5)
    done = await h.launch(exits_with(0))
    await h.until(done, RunnerState.EXITED)
    await h.launch(SLEEP)
    await h.manager.restart(done)
    assert h.history(done)[-1] == ("exited", "queued")


@async_test
async def test_restart_of_a_running_runner_stops_then_starts_it(harness) -> None:
    h = harness()
    rid = await h.launch(SLEEP)
    first = (await h.until(rid, RunnerState.RUNNING)).pid
    await h.manager.restart(rid)
    runner = await h.until(rid, RunnerState.RUNNING)
    assert runner.pid != first and runner.restarts == 1
    assert ("stopping", "stopped") in h.history(rid)
    assert h.history(rid)[-2:] == [("stopped", "starting"), ("starting", "running")]


# --- reconcile -----------------------------------------------------------------------------------
def _orphan(h: Harness, state: str, **fields: Any) -> Runner:
    """A runner row as a killed supervisor would have left it."""
    return Runner.create(
        project=h.project,
        command=SLEEP,
        cwd=str(h.root),
        state=state,
        created_at=h.clock(),
        started_at=h.clock(),
        token_hash="x",
        **fields,
    )


@async_test
async def test_reused_pid_is_not_adopted(harness) -> None:
    h = harness()
    stranger = psutil.Popen(SLEEP)
    try:
        real = stranger.create_time()
        rid = _orphan(h, "running", pid=stranger.pid, create_time=real - 100).id
        h.manager.reconcile()
        runner = h.runner(rid)
        assert runner.state == "lost"
        assert runner.reason == (
            f"process {stranger.pid} is now a different program (pid "
            "reused) and no exit status was recorded"
        )
        assert stranger.is_running()  # the stranger is neither adopted nor harmed
        assert h.history(rid) == [("running", "lost")]
    finally:
        stranger.kill()
        stranger.wait()


@async_test
async def test_reconcile_adopts_live_and_finishes_dead_runners(harness) -> None:
    h = harness()
    alive = await h.launch(SLEEP)
    dead = await h.launch(exits_with(4, after=0.3))
    await h.until(alive, RunnerState.RUNNING)
    # a new manager on the same DB, as after the supervisor was killed: none are its children
    h.manager.live.clear()
    await asyncio.sleep(0.8)
    fresh = RunnerManager(h.root, h.manager.settings, clock=h.clock)
    OPEN.append(fresh)
    never_seen = _orphan(h, "starting").id
    fresh.reconcile()
    assert h.runner(alive).state == "running"
    assert fresh.live[alive].identity == Identity(h.runner(alive).pid, h.runner(alive).create_time)
    assert (h.runner(dead).state, h.runner(dead).exit_code) == ("failed", 4)
    assert h.runner(never_seen).state == "lost"
    fresh.stop(alive)
    h.manager = fresh
    await h.until(alive, RunnerState.STOPPED)


@async_test
async def test_transition_lost_to_starting_on_restart(harness) -> None:
    h = harness(start_secs=5)
    rid = _orphan(h, "running").id  # no pid recorded: it can only be lost
    h.manager.reconcile()
    assert h.runner(rid).state == "lost"
    await h.manager.restart(rid)
    assert h.history(rid)[-2:] == [("running", "lost"), ("lost", "starting")]
    assert h.runner(rid).pid is not None


@async_test
async def test_transition_stopping_to_stopped_when_it_ended_unwatched(harness) -> None:
    h = harness()
    gone = psutil.Popen(exits_with(0))
    gone.wait()
    rid = _orphan(h, "stopping", pid=gone.pid, create_time=time.time() - 5).id
    h.manager.reconcile()
    runner = h.runner(rid)
    assert h.history(rid) == [("stopping", "stopped")]
    assert runner.reason.startswith("stopped by user; ")


@async_test
async def test_heartbeats_are_flushed_to_the_db_in_one_batch(harness) -> None:
    h = harness()
    rid = await h.launch(SLEEP)
    token = "t0ken"
    h.manager.live[rid].row.token_hash = hash_token(token)
    h.manager.heartbeat(rid, token, Heartbeat(cpu_percent=2.5, rss_bytes=4096), now=100.0)
    h.manager.heartbeat(rid, token, Heartbeat(tokens=7), now=101.0)
    assert Runner.get_by_id(rid).last_heartbeat is None  # not written per heartbeat
    assert h.manager.flush_heartbeats() == 1
    row = Runner.get_by_id(rid)
    assert (row.last_heartbeat, row.cpu_percent, row.rss_bytes, row.tokens) == (101.0, 2.5, 4096, 7)


@async_test
async def test_the_one_second_chores_sleep_while_no_runner_is_active(harness) -> None:
    """The supervisor pauses its reap/flush/pump jobs with no runner to watch (an idle
    supervisor's wake-ups), and resumes them for the first one."""
    h = harness()
    seen: list[bool] = []
    h.manager.watch_busy(seen.append)
    first = await h.launch(exits_with(0, after=0.3))
    second = await h.launch(exits_with(0, after=0.6))
    await h.until(first, RunnerState.EXITED)
    assert seen == [False, True]
    await h.until(second, RunnerState.EXITED)
    assert seen == [False, True, False]
