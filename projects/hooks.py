"""What projects asks of the apps above it.

projects sits below review in the layers, so it never imports review: the notification
settings name a review queue by its id (``Destination.filter_queue_id``,
``QueueAlert.queue_id``), and the pages offer those queues through the provider review
registers here (``review.hooks``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueChoice:
    """One review queue as the settings pages offer it."""

    id: int
    name: str
    project_id: int
    project_name: str
    archived: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} · {self.project_name}" + (" (archived)" if self.archived else "")


# A queue choices provider takes nothing and returns the queues of the organization in
# the tenant scope (none without one: it reads through the scoped managers). One query
# per call.
QueueChoicesProvider = Callable[[], list[QueueChoice]]
_queue_choice_providers: list[QueueChoicesProvider] = []


def register_queue_choices(provider: QueueChoicesProvider) -> None:
    if provider not in _queue_choice_providers:
        _queue_choice_providers.append(provider)


def queue_choices() -> list[QueueChoice]:
    """Every provider's queues of the organization in scope, by project then name."""
    found = [choice for provider in _queue_choice_providers for choice in provider()]
    return sorted(found, key=lambda c: (c.project_name.lower(), c.name.lower(), c.id))
