"""Starting a runner's process, watching for its end, and counting its start as a success.

The root process is the trampoline of :mod:`.process` in its own session, with the runner's
id, token and the API's address in its environment and its output going to the run dir's
spool. Its identity (pid, create time) is written as a fact: kept and written later if the DB
refuses it. Where the OS has pidfds (Linux), its end wakes the loop; elsewhere the reap poll
of :class:`~supervisor.runners.exits.Exits` notices it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.core import paths
from supervisor.core.states import RunnerState
from supervisor.runners.logpump import SPOOL_NAME, LogPump
from supervisor.runners.process import ProcessOps
from supervisor.runners.procinfo import Identity
from supervisor.runners.table import RETRY_INTERVAL, Ended, Live, RunnerTable
from supervisor.runners.tasks import Signal, Tasks
from supervisor.runners.tokens import TOKEN_VARIABLE, hash_token
from supervisor.storage.models import Runner
from supervisor.storage.writes import StorageError

log = logging.getLogger("stratavore.runners")
S = RunnerState
EXIT_FILE = "exit"  # in the run dir: the trampoline writes the command's exit status there


@dataclass(eq=False, repr=False)
class Spawner:
    """Spawns runners' processes, watches each root for its end, and promotes a runner from
    starting to running once it has been up for ``start_secs``.

    Signals: :attr:`started` (a runner's process runs, spawned or adopted: its attention is
    followed from then), :attr:`failed` (a process could not be started;
    ``live.end_unrecorded`` says why), :attr:`exited` (a watched root ended: the runner's
    id) and :attr:`promoted` (a runner entered running)."""

    root: Path
    table: RunnerTable
    ops: ProcessOps
    pump: LogPump
    tasks: Tasks
    search_path: str
    clock: Callable[[], float]
    api_url: str = field(default="", init=False)  # where runners reach the API (STRATAVORE_API)
    started: Signal[[Live, float]] = field(default_factory=Signal, init=False)
    failed: Signal[[Live]] = field(default_factory=Signal, init=False)
    exited: Signal[[int]] = field(default_factory=Signal, init=False)
    promoted: Signal[[]] = field(default_factory=Signal, init=False)

    def spawn(self, runner: Runner, now: float) -> None:
        """Start the runner's process (it is already in ``starting``)."""
        run_dir = paths.run_dir(self.root, runner.id)
        token = secrets.token_urlsafe(24)
        env = {
            **os.environ,
            "PATH": self.search_path,
            **runner.env,
            "STRATAVORE_RUNNER_ID": str(runner.id),
            TOKEN_VARIABLE: token,
            "STRATAVORE_API": self.api_url,
        }
        live = self.table.live[runner.id]
        try:
            paths.private_dir(run_dir)
            ident = self.ops.spawn(
                runner.command, runner.cwd, env, run_dir / SPOOL_NAME, run_dir / EXIT_FILE
            )
        except (OSError, ValueError) as exc:  # ValueError: what exec cannot take
            log.warning("spawnerr: runner %s: %s", runner.id, exc)
            live.end_unrecorded = Ended(
                None, now, runner.log_offset, None, f"could not start: {exc}"
            )
            self.failed.send(live)
            return
        self.watch(live, ident)
        # the process runs: its identity is a fact, kept and written later if the DB refuses
        self.table.write_fields(
            {
                runner.id: {
                    "pid": ident.pid,
                    "create_time": ident.create_time,
                    "token_hash": hash_token(token),
                }
            }
        )
        self.started.send(live, now)
        self.pump.track(runner.id, run_dir, runner.log_offset)
        log.info("spawned: runner %s with pid %s: %s", runner.id, ident.pid, runner.command)
        self.schedule_promotion(runner, now)

    def adopt(self, live: Live, ident: Identity, now: float) -> None:
        """Take over a runner's process an earlier supervisor started: watched, pumped and
        followed as if it had been spawned here."""
        runner = live.row
        self.watch(live, ident)
        self.started.send(live, now)
        if runner.supervised:
            self.pump.track(runner.id, paths.run_dir(self.root, runner.id), runner.log_offset)

    def schedule_promotion(self, runner: Runner, now: float) -> None:
        remaining = runner.start_secs - (now - (runner.started_at or now))
        live = self.table.live[runner.id]
        if remaining <= 0:
            self.promote(runner.id)
        else:
            live.timer = self.tasks.loop.call_later(remaining, self.promote, runner.id)

    def promote(self, runner_id: int, now: float | None = None) -> None:
        """``starting`` -> ``running`` once the start-success window has passed."""
        live = self.table.live.get(runner_id)
        if (
            live is None
            or live.state is not S.STARTING
            or live.end_unrecorded is not None
            or live.stop_unrecorded is not None  # stopped before it was promoted
        ):
            return
        now = self.clock() if now is None else now
        runner = live.row
        try:
            # STARTING -> RUNNING: a start counts only after start_secs up
            self.table.transition(runner, S.RUNNING, None, now, early_exits=0)
        except StorageError:
            live.timer = self.tasks.loop.call_later(RETRY_INTERVAL, self.promote, runner_id)
            return
        log.info("success: runner %s entered running (up > %s s)", runner_id, runner.start_secs)
        self.promoted.send()

    # --- the exit watch ---------------------------------------------------------------------
    def watch(self, live: Live, ident: Identity | None) -> None:
        """Record the runner's root process and watch for its end: a pidfd on the loop where
        the OS has them (Linux; any process, not only our children), else the reap poll."""
        if live.exit_fd is not None:
            with contextlib.suppress(Exception):
                self.tasks.loop.remove_reader(live.exit_fd)
            os.close(live.exit_fd)
            live.exit_fd = None
        live.identity = ident
        if ident is None:
            return
        fd = self.ops.open_exit_watch(ident)
        if fd is None:
            return
        try:
            self.tasks.loop.add_reader(fd, self._exit_fd_ready, live.row.id)
        except (NotImplementedError, RuntimeError):
            os.close(fd)
            return
        live.exit_fd = fd

    def unwatch(self, live: Live) -> None:
        """The runner has no process any more (it ended, or the supervisor lets go of it)."""
        self.watch(live, None)

    def rewatch(self, live: Live) -> None:
        """Watch on: the pidfd fired but the process is still there."""
        assert live.exit_fd is not None
        self.tasks.loop.add_reader(live.exit_fd, self._exit_fd_ready, live.row.id)

    def _exit_fd_ready(self, runner_id: int) -> None:
        live = self.table.live.get(runner_id)
        if live is not None and live.exit_fd is not None:
            self.tasks.loop.remove_reader(live.exit_fd)  # level-triggered: it would fire again
        self.exited.send(runner_id)
