"""The dashboard window: runners, agent sessions, projects, budgets, events, dead letters and
usage charts.

It shows what the bridge's snapshot and the API return and acts only through the bridge. The
snapshot tabs (runners, projects, budgets) follow ``Bridge.changed``; the others fetch their
data when they are shown and every :data:`window.FETCH_INTERVAL_MS` while they stay visible,
on the loop: nothing here waits on the network in the GUI thread.

One module per tab; :mod:`desktop.dashboard.window` assembles them.
"""

from desktop.dashboard.window import Dashboard

__all__ = ["Dashboard"]
