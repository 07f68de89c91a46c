"""Stratavore's tray app (PySide6 + qasync): the tray, the dashboard, notifications and
settings. It reaches the core only through the supervisor's HTTP API and one bridge
(:mod:`desktop.bridge`); it holds no business logic."""
