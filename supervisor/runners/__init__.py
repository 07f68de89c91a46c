"""Runner lifecycle: launch, spawn, exits, stop, liveness, attention, limits, worktrees, logs."""
