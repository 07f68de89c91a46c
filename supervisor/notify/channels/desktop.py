"""The desktop channel: messages handed to the tray app's subscriber (or the log, headless)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from supervisor.notify.channels.base import Message, Outcome

log = logging.getLogger("stratavore.notify")

DesktopCallback = Callable[[Message], None]


class DesktopNotShown(Exception):
    """Raised by a desktop subscriber when its notification was not shown (no notification
    service took it, no fallback showed it): the attempt is retried, with this as its
    reason."""


_desktop_lock = threading.Lock()
_desktop_subscribers: list[DesktopCallback] = []


def subscribe_desktop(callback: DesktopCallback) -> Callable[[], None]:
    """Hand desktop messages to ``callback`` (the tray app); returns the unsubscribe function.

    The callback runs on the dispatcher's thread and returns once the message was shown (it
    may wait a few seconds for the notification service); :class:`DesktopNotShown`, or any
    other exception, makes the attempt retryable.
    """
    with _desktop_lock:
        _desktop_subscribers.append(callback)

    def unsubscribe() -> None:
        with _desktop_lock:
            if callback in _desktop_subscribers:
                _desktop_subscribers.remove(callback)

    return unsubscribe


def desktop_subscribed() -> bool:
    """Whether a desktop notifier (the tray app) is subscribed now."""
    with _desktop_lock:
        return bool(_desktop_subscribers)


def send_desktop(message: Message) -> Outcome:
    with _desktop_lock:
        subscribers = list(_desktop_subscribers)
    if not subscribers:  # headless: the log is the desktop
        log.info("notify: [%s] %s", message.severity, message.title)
        return Outcome.delivered(reason="logged: no desktop notifier is subscribed")
    for callback in subscribers:
        try:
            callback(message)
        except DesktopNotShown as exc:
            log.warning("notify: desktop notification %r not shown: %s", message.title, exc)
            return Outcome.retry(f"The desktop notification was not shown: {exc}.")
        except Exception as exc:
            log.exception("notify failed: desktop notifier raised on %r", message.title)
            return Outcome.retry(f"The desktop notifier failed ({type(exc).__name__}).")
    return Outcome.delivered()
