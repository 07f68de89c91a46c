"""The team ledger: a shared PostgreSQL database that replicates every member's usage ledger,
holds the team's budgets and answers the team's reports (issue 13). Qt-free, like all of
``supervisor/``.

Modules: ``server`` (the connection and the versioned team schema), ``local`` (this data dir's
side: membership, machine id, the outbox the push drains), ``membership`` (join, leave,
status), ``push`` (the replica, without loss), ``budgets`` (team budgets, enforced on each
machine), ``reports`` (SQL on the server), ``otel`` (OTLP/HTTP export of /metrics),
``service`` (the running supervisor's side), ``wiring`` (the push job and the OTLP
export, as the daemon starts them). The commands are ``supervisor/cli/team.py``;
the local store's side of the outbox is ``supervisor/storage/queries/team.py``.

The local SQLite store stays each machine's source of truth; nothing here writes to the
local ledger's own tables.
"""
