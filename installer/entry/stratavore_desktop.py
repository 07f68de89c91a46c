"""Frozen entry of the tray app (``stratavore-desktop``, windowed).

``freeze_support()`` comes first: the usage importer spawns worker processes, and a spawned
child of a frozen app is this very executable, which must turn into the worker here instead
of starting a second tray app.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from desktop.app import main

    sys.exit(main())
