"""The command-line programs: ``stratavore`` and ``stratavore-agent``."""
