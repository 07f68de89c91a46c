"""A pushing process for the kill -9 tests: ``python -m tests.team.push_child MODE`` on the
data dir of ``STRATAVORE_HOME``.

- ``loop BATCH``: push everything in batches of BATCH, again and again (killed from outside);
- ``commit-then-die``: send one batch to the team database (committed there), then SIGKILL
  itself before the local transaction that confirms it.
"""

from __future__ import annotations

import os
import signal
import sys

from supervisor.core import paths
from supervisor.storage import db as store
from supervisor.team import local, membership, push


def main(mode: str, *args: str) -> None:
    store.init_db(paths.db_path(paths.data_dir()))
    if mode == "loop":
        pusher = push.Pusher(batch=int(args[0]))
        print("pushing", flush=True)
        while True:
            pusher.push()
    elif mode == "commit-then-die":
        member = membership.require_membership()
        payload = push.collect(local.next_batch(int(args[0])))
        db = membership.connect(member)
        push.send(db, member, local.machine_id(), payload)
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(*sys.argv[1:])
