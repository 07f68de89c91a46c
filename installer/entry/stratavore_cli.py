"""Frozen entry of the command line (``stratavore``, console).

``freeze_support()`` comes first: ``stratavore daemon`` runs the usage importer, whose worker
processes are spawned from this executable.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from supervisor.cli.main import main

    sys.exit(main())
