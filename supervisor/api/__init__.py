"""The loopback HTTP API: routes, schemas, the client the CLI uses, metrics."""
