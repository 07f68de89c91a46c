"""Token usage: importers for the agents' own logs, the ledger, pricing, reports and budgets."""
