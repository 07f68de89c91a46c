"""Notifications: delivery channels and the policy that decides what each channel gets.

- ``channels``: the channel kinds (desktop, telegram, ntfy, webhook), their settings
  (:func:`~supervisor.notify.channels.check_channel`) and one delivery attempt
  (:func:`~supervisor.notify.channels.send`), which says delivered, retry (when) or failed.
- ``policy``: per channel, which event types and severities, quiet hours, and the
  :class:`~supervisor.notify.policy.Coalescer` that folds a storm into one summary.

Secrets for channels live in the OS keyring (``supervisor.core.secrets``), never in settings. The
outbox dispatcher (delivery rows, retries, dead letters) drives both modules; they keep no
state of their own apart from the desktop subscribers.
"""
