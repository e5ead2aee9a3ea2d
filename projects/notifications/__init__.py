"""Notifications: events written with their cause, delivered to Slack and signed
webhooks by workers through the outbox (docs/notifications.md).

- :mod:`.catalogue`: the event types, their names and what they mean.
- :mod:`.events`: :func:`event_emit`, called by services inside their transaction.
- :mod:`.destinations`: writes on destinations (create, update, rotate, delete, test).
- :mod:`.delivery`: the fan-out of an event to destinations, one attempt of a
  delivery, retries, disabling, redelivery.
- :mod:`.personal`, :mod:`.queue_alerts`, :mod:`.announcements`: people's own channels
  and preferences, queue alerts, and the organization events of projects' services.
- :mod:`.transports`: one transport per destination kind; :mod:`.ssrf`: the address guard.
- :mod:`.api` (the REST API) and :mod:`.views` (the settings pages): the HTTP layer; the
  rest of the package never imports them.
"""

from projects.notifications.events import event_emit, is_subscribed, site_reverse, site_url

__all__ = ["event_emit", "is_subscribed", "site_reverse", "site_url"]
