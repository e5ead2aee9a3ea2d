"""Builders for conversations under review: a thread of turns (traces in start order) in
a queue, through the services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import QueueItem, ReviewQueue, ScoreConfig
from tests.factories import Tenant
from tests.review.helpers import add_reviewers, make_config, make_queue, make_trace
from traces.models import Thread, Trace

VERDICTS = [{"label": "Resolved", "value": 1.0}, {"label": "Unresolved", "value": 0.0}]
VERDICT_RUBRIC = [
    {
        "label": "Resolved",
        "definition": "The user got what they needed.",
        "examples": ["The right dose, with when to take it."],
    },
    {
        "label": "Unresolved",
        "definition": "They did not.",
        "examples": ["A dose ten times too high."],
    },
]
TURNS = [
    ("What dose of amoxicillin for a child of 20 kg?", "500 mg three times a day."),
    ("And for an adult?", "5 g three times a day."),
    ("Is that right?", "Yes."),
]


@dataclass
class Conversation:
    queue: ReviewQueue
    config: ScoreConfig
    reviewers: list
    items: list[QueueItem]
    turns: list[list[Trace]]  # per item, in order


def make_thread(tenant: Tenant, name: str, turns: list[tuple[str, str]] = TURNS) -> list[Trace]:
    """A thread ``name`` whose turns are ``turns`` (question, answer), in start order;
    their trace ids are ``<name>-t1``, ``<name>-t2``..."""
    with tenancy.tenant_scope(tenant.organization.pk):
        thread = Thread.objects.create(project=tenant.project, external_id=name)
    start = timezone.now() - timedelta(hours=1)
    return [
        make_trace(
            tenant,
            thread=thread,
            external_id=f"{name}-t{n}",
            input={"question": question},
            output={"answer": answer},
            start_time=start + timedelta(minutes=n),
        )
        for n, (question, answer) in enumerate(turns, 1)
    ]


def make_conversations(
    tenant: Tenant, *, count: int = 1, reviewers: int = 2, **queue_fields: Any
) -> Conversation:
    """``count`` conversations in a queue of ``reviewers`` new reviewers (overlap: all of
    them unless told), asking one categorical question about the whole conversation."""
    config = make_config(
        tenant,
        name="Resolved",
        data_type="categorical",
        options=VERDICTS,
        rubric=VERDICT_RUBRIC,
        required=True,
        min_value=None,
        max_value=None,
        step=None,
    )
    people = add_reviewers(tenant, reviewers)
    queue_fields.setdefault("overlap", reviewers)
    queue_fields.setdefault("name", "Conversations")
    queue = make_queue(tenant, configs=[config], reviewers=people, **queue_fields)
    items, turns = [], []
    for n in range(count):
        traces = make_thread(tenant, f"chat-{queue.pk}-{n + 1}")
        with tenancy.tenant_scope(tenant.organization.pk):
            items.append(
                services.queue_item_add(
                    actor=Actor(user=tenant.owner), queue=queue, thread_id=traces[0].thread_id
                )
            )
        turns.append(traces)
    return Conversation(queue=queue, config=config, reviewers=people, items=items, turns=turns)


def submit(tenant: Tenant, conversation: Conversation, reviewer, verdict: str, **more: Any):
    """``reviewer`` claims their next conversation and submits ``verdict`` (and ``more``:
    turns, expected output...)."""
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=reviewer), queue=conversation.queue)
        return services.assignment_submit(
            actor=Actor(user=reviewer),
            assignment_id=lease.pk,
            values={str(conversation.config.pk): verdict},
            **more,
        )
