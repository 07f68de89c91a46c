"""Frozen entry of the command line (``stratavore``, console).

``freeze_support()`` comes first: ``stratavore daemon`` runs the usage importer, whose worker
processes are spawned from this executable. On Windows this executable is also the wrapper
at the root of every runner (``--windows-runner``, see supervisor/runners/winjob.py), which
imports nothing more than it needs.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    if sys.argv[1:2] == ["--windows-runner"]:
        from supervisor.runners.winrunner import main as runner

        sys.exit(runner(sys.argv[2:]))
    from supervisor.cli.main import main

    sys.exit(main())
