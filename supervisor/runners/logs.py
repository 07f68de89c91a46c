"""When runners' output is pumped into their logs (:mod:`.logpump` does the pumping): every
second for all of them, at once for one whose log is about to be read, and a last time at
shutdown. File I/O runs in a worker thread; the new offsets are written through the table."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

from supervisor.runners.logpump import LogPump
from supervisor.runners.table import RunnerTable
from supervisor.runners.tasks import Tasks


@dataclass(eq=False, repr=False)
class Logs:
    """Schedules the log pump and records how far each runner's output was read."""

    table: RunnerTable
    pump: LogPump
    tasks: Tasks

    async def refresh_log(self, runner_id: int) -> None:
        """Pump one active runner's output into its log now (before the log is read)."""
        live = self.table.live
        if runner_id in live and live[runner_id].row.supervised:
            with contextlib.suppress(KeyError):  # not spawned yet
                offset = await self.tasks.loop.run_in_executor(
                    None, functools.partial(self.pump.drain, runner_id, final=False)
                )
                self.table.write_fields({runner_id: {"log_offset": offset}})

    async def pump_logs(self) -> None:
        offsets = await self.tasks.loop.run_in_executor(None, self.pump.tick)
        self.table.write_fields({rid: {"log_offset": offset} for rid, offset in offsets.items()})

    def pump_last(self) -> None:
        """At shutdown, on the loop: what the runners wrote since the last pump."""
        self.table.write_fields({rid: {"log_offset": off} for rid, off in self.pump.tick().items()})
