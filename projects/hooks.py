"""What projects asks of the apps above it.

projects sits below review in the layers, so it never imports review: the notification
settings and invitations name a review queue by its id (``Destination.filter_queue_id``,
``QueueAlert.queue_id``, ``Invitation.queue_ids``), and the pages offer those queues
through the provider review registers here (``review.hooks``). Accepting an invitation
joins the invitee to its queues' pools, and sign-in sends a reviewer to their work page,
through the joiner and the work page provider review registers here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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


# A score names provider takes ``viewer`` (the user reading the page) and returns the
# names of the scores of the organization in the tenant scope that the viewer may read,
# sorted and distinct: the destination filter offers them. traces registers it.
ScoreNamesProvider = Callable[..., list[str]]
_score_name_providers: list[ScoreNamesProvider] = []


def register_score_names(provider: ScoreNamesProvider) -> None:
    if provider not in _score_name_providers:
        _score_name_providers.append(provider)


def score_names(*, viewer: Any) -> list[str]:
    """Every provider's score names of the organization in scope, sorted and distinct
    (none when no app registered one)."""
    return sorted({name for provider in _score_name_providers for name in provider(viewer=viewer)})


# --- invitations: the queues an invitee joins, where a reviewer starts --------------------

# A queue pool joiner takes ``actor`` (``hitl.audit.Actor``), ``membership`` (a member
# of the organization in scope) and ``queue_ids`` and adds the member to those queues'
# reviewer pools (kept as they are when already in one), with history, inside the
# caller's transaction; it returns the names of the queues the member is now in. Ids of
# queues gone since, archived, or that the member may not review in (role, project
# narrowing) are passed over: the invitation checked them when it was sent, and
# accepting it still joins the organization.
QueuePoolJoiner = Callable[..., list[str]]
_queue_pool_joiners: list[QueuePoolJoiner] = []


def register_queue_pool_join(joiner: QueuePoolJoiner) -> None:
    if joiner not in _queue_pool_joiners:
        _queue_pool_joiners.append(joiner)


def queue_pool_join(*, actor: Any, membership: Any, queue_ids: list[int]) -> list[str]:
    """Adds ``membership`` to the reviewer pools of ``queue_ids`` through every joiner;
    the names of the queues joined. Nothing is joined when no app registered one."""
    if not queue_ids:
        return []
    return [
        name
        for joiner in _queue_pool_joiners
        for name in joiner(actor=actor, membership=membership, queue_ids=list(queue_ids))
    ]


@dataclass(frozen=True)
class WorkPage:
    """Where a member's review work is: its page, and whether anything is theirs to do
    there (a queue whose pool they are in, an item pushed to them, a lease they hold)."""

    url: str
    has_work: bool


# A work page provider takes ``membership`` (in the tenant scope of its organization)
# and returns its ``WorkPage``, or None when it has no page for that member.
WorkPageProvider = Callable[..., "WorkPage | None"]
_work_page_providers: list[WorkPageProvider] = []


def register_work_page(provider: WorkPageProvider, *, first: bool = False) -> None:
    """``first``: asked before those registered so far (a step that comes before the
    member's usual work, such as a calibration round to take)."""
    if provider not in _work_page_providers:
        if first:
            _work_page_providers.insert(0, provider)
        else:
            _work_page_providers.append(provider)


def work_page(*, membership: Any) -> WorkPage | None:
    """The first provider's work page for ``membership`` (None: no provider has one)."""
    for provider in _work_page_providers:
        page = provider(membership=membership)
        if page is not None:
            return page
    return None
