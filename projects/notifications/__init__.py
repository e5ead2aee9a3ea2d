"""Notifications: events written with their cause, delivered to Slack and signed
webhooks by workers through the outbox (docs/notifications.md).

- :mod:`.catalogue`: the event types, their names and what they mean.
- :mod:`.events`: :func:`event_emit`, called by services inside their transaction.
- :mod:`.destinations`: writes on destinations (create, update, rotate, delete, test).
- :mod:`.delivery`: the fan-out of an event to destinations, one attempt of a
  delivery, retries, disabling, redelivery.
"""

from projects.notifications.events import event_emit, is_subscribed, site_url

__all__ = ["event_emit", "is_subscribed", "site_url"]
