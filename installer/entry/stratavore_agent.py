"""Frozen entry of ``stratavore-agent`` (console): wraps a command run in a terminal.

``freeze_support()`` comes first, as in every entry of the bundle, so no spawned child of
this executable ever runs the agent a second time.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from supervisor.cli.agent import main

    sys.exit(main())
