"""The settings dialog: notification channels, the supervisor's intervals and caps, budgets,
profiles, and this app's own preferences (start at login, theme).

Everything the supervisor owns is read and written through the bridge, on the loop: a page's
controls are disabled while its request runs, and a refusal shows the supervisor's own
sentence on that page. A channel's secret is typed into a password field, sent once in the
PUT that creates the channel (the supervisor puts it in the OS keyring) and cleared at once:
the dialog never keeps or shows it. Start at login and the theme are this app's, not the
supervisor's: :mod:`desktop.autostart` and QSettings.

One module per page; :mod:`desktop.settings.page` holds what they share. The dialog (and the
bridge, HTTP client and all, with it) is imported when first asked for: the tray's icon reads
the theme from :mod:`desktop.settings.prefs` while the app starts, before any of that.
"""

from typing import Any

from desktop.settings.prefs import THEME_KEY, THEMES, preferences, theme

__all__ = ["THEMES", "THEME_KEY", "SettingsDialog", "preferences", "theme"]


def __getattr__(name: str) -> Any:
    if name == "SettingsDialog":
        from desktop.settings.dialog import SettingsDialog

        return SettingsDialog
    raise AttributeError(f"module 'desktop.settings' has no attribute {name!r}")
