"""Stratavore's tray app (PySide6 + qasync). It reaches the core only through the supervisor's
public API and one bridge; it holds no business logic. Built in a later issue."""
