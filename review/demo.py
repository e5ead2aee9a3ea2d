"""The review part of the demo: two rubric questions and a queue of the demo traces with
both demo reviewers in its pool, so a newcomer signs in as a reviewer and reviews at
once; and a queue of whole conversations filled by a thread rule (the demo's sessions
with a thumbs-down in any turn), reviewed turn by turn. Registered from
:class:`review.apps.ReviewConfig`; idempotent (``seed_demo`` may run again: existing
questions, queues and the rule are reused, queued traces and threads are skipped)."""

from __future__ import annotations

from typing import Any

from projects.demo import DemoContext
from projects.models import Membership
from review import services
from review.models import ReviewQueue, RoutingRule, RoutingTarget, ScoreConfig

DEMO_QUEUE = "Clinical answers"
DEMO_CONVERSATION_QUEUE = "Whole conversations"
DEMO_THREAD_RULE = "Conversations with a thumbs-down"
DEMO_REVIEWERS = ("reviewer1@demo.hitl.local", "reviewer2@demo.hitl.local")

DEMO_CONFIGS: list[dict[str, Any]] = [
    {
        "name": "Clinical accuracy",
        "description": "Is the answer clinically correct for this patient and question?",
        "data_type": "categorical",
        "options": [
            {"label": "Correct", "value": 1.0},
            {"label": "Partly correct", "value": 0.5},
            {"label": "Incorrect", "value": 0.0},
        ],
        "rubric": [
            {
                "label": "Correct",
                "definition": "Right drug, dose and caveats for the stated patient.",
                "examples": ["Limits acetaminophen to 2 g/day in cirrhosis."],
            },
            {
                "label": "Partly correct",
                "definition": "Right direction, but a dose, caveat or contraindication is missing.",
                "examples": ["Holds metformin but forgets to recheck renal function."],
            },
            {
                "label": "Incorrect",
                "definition": "Wrong or unsafe advice a clinician must not follow.",
                "examples": ["Recommends warfarin in pregnancy."],
            },
        ],
        "required": True,
    },
    {
        "name": "Grounded in the formulary",
        "description": "Is every claim supported by the retrieved formulary excerpts?",
        "data_type": "boolean",
        "rubric": [
            {
                "label": "Yes",
                "definition": "Every claim can be traced to a retrieved excerpt.",
                "examples": ["The dose matches excerpt #2."],
            },
            {
                "label": "No",
                "definition": "At least one claim has no support in the excerpts.",
                "examples": ["States a duration that no excerpt mentions."],
            },
        ],
        "required": True,
    },
]

DEMO_CONVERSATION_CONFIG: dict[str, Any] = {
    "name": "Conversation resolved",
    "description": "Did the clinician get a safe, usable answer by the end of the conversation?",
    "data_type": "categorical",
    "target": "thread",
    "options": [{"label": "Resolved", "value": 1.0}, {"label": "Unresolved", "value": 0.0}],
    "rubric": [
        {
            "label": "Resolved",
            "definition": "By the last turn the clinician has a correct, usable answer.",
            "examples": ["A wrong dose in turn 1, corrected in turn 2."],
        },
        {
            "label": "Unresolved",
            "definition": "The conversation ends without a safe answer.",
            "examples": ["The last answer still recommends warfarin in pregnancy."],
        },
    ],
    "required": True,
}


def _config(actor: Any, project: Any, definition: dict[str, Any]) -> ScoreConfig:
    config = ScoreConfig.objects.filter(project=project, name=definition["name"]).first()
    if config is None:
        config = services.score_config_create(actor=actor, project=project, **definition)
    return config


def _reviewers() -> list[dict[str, int]]:
    return [
        {"membership_id": m.pk}
        for m in Membership.objects.filter(user__email__in=DEMO_REVIEWERS).order_by("pk")
    ]


def _queue(
    context: DemoContext, name: str, description: str, *, overlap: int, configs: list[ScoreConfig]
) -> ReviewQueue:
    """The demo's blind queue ``name`` (made once) of ``configs``, both demo reviewers in
    its pool."""
    queue = ReviewQueue.objects.filter(project=context.project, name=name).first()
    if queue is None:
        queue = services.queue_create(
            actor=context.actor,
            project=context.project,
            name=name,
            description=description,
            overlap=overlap,
            blind_mode=True,
            include_explanation=True,
            include_expected_output=True,
            form=[{"config_id": c.pk} for c in configs],
            reviewers=_reviewers(),
        )
    return queue


def _conversations(context: DemoContext) -> str:
    """The conversations queue, its thread rule, and the threads the rule takes now."""
    actor, project = context.actor, context.project
    config = _config(actor, project, DEMO_CONVERSATION_CONFIG)
    queue = _queue(
        context,
        DEMO_CONVERSATION_QUEUE,
        "Sessions an end user thumbed down, reviewed turn by turn.",
        overlap=1,
        configs=[config],
    )
    if not RoutingRule.objects.filter(queue=queue, name=DEMO_THREAD_RULE).exists():
        services.routing_rule_create(
            actor=actor,
            project=project,
            queue_id=queue.pk,
            name=DEMO_THREAD_RULE,
            signal="thumbs_down",
            target=RoutingTarget.THREAD,
            thread_conditions={"thumbs_down": True},
        )
    routed = sum(services.routing_apply_threads(project_id=project.pk).values())
    return (
        f"review queue “{queue.name}”: {routed} conversations routed by the thread rule "
        f"“{DEMO_THREAD_RULE}”"
    )


def demo_step(context: DemoContext) -> str:
    """Questions, the queue and its items (runs inside the organization's scope)."""
    actor, project = context.actor, context.project
    configs = [_config(actor, project, definition) for definition in DEMO_CONFIGS]
    queue = _queue(
        context,
        DEMO_QUEUE,
        "Answers from the clinical assistant; two reviewers each, blind.",
        overlap=2,
        configs=configs,  # any disagreement adjudicates
    )
    added = services.queue_items_add_from_filter(actor=actor, queue=queue, params={"tags": "demo"})
    return (
        f"review queue “{queue.name}”: {added.get('added', 0)} items added, both demo "
        "reviewers in its pool (sign in as a reviewer, open My work); " + _conversations(context)
    )
