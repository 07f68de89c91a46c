"""Runner lifecycle: launch, spawn, exits, stop, liveness, attention, limits, worktrees, logs.

This file imports nothing: on Windows every runner's root is ``supervisor.runners.winrunner``,
a small process that must not pay for the whole supervisor's imports.
"""
