"""A runner's own secret: given to its processes in the environment (so their heartbeats, hooks
and usage reports prove whose they are, and a process of its tree can be told apart from a
stranger's), and stored only as its SHA-256."""

from __future__ import annotations

import hashlib

TOKEN_VARIABLE = "STRATAVORE_RUNNER_TOKEN"  # the runner's secret, inherited by its processes


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
