"""``python -m supervisor.cli``: the ``stratavore`` command."""

from supervisor.cli.main import main

raise SystemExit(main())
