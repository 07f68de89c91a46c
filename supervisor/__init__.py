"""Stratavore's headless supervisor.

This is a Qt-free zone: nothing under ``supervisor`` may import PySide6, qasync or ``desktop``
(``tests/test_architecture.py`` enforces it), so the same code runs as ``stratavore daemon``
and embedded in the tray app.
"""

__version__ = "0.1.0"
