"""The event catalogue: every type a destination can subscribe to.

A name is stable once released (receivers switch on it): ``<app>.<thing>.<what
happened>``. docs/notifications.md lists each type with its payload.
"""

from __future__ import annotations

API_KEY_CREATED = "projects.api_key.created"
API_KEY_REVOKED = "projects.api_key.revoked"
MEMBER_INVITED = "projects.member.invited"
MEMBER_JOINED = "projects.member.joined"
ITEM_COMPLETED = "review.item.completed"
ITEM_NEEDS_ADJUDICATION = "review.item.needs_adjudication"
COMMENT_MENTIONED = "review.comment.mentioned"
ITEM_ASSIGNED = "review.item.assigned"
QUEUE_BACKLOG = "review.queue.backlog"
QUEUE_COMPLETED = "review.queue.completed"
CALIBRATION_PASSED = "review.calibration.passed"
CALIBRATION_FAILED = "review.calibration.failed"
AGREEMENT_ALERT = "review.agreement.alert"
ALIGNMENT_ALERT = "review.alignment.alert"
ROUTING_RULE_FAILING = "review.routing_rule.failing"
DATASET_ITEM_PROMOTED = "datasets.item.promoted"
# Sent only by "send a test event", to one destination.
TEST = "hitl.test"

EVENT_TYPES: dict[str, str] = {
    API_KEY_CREATED: "An API key was created in a project.",
    API_KEY_REVOKED: "An API key was revoked.",
    MEMBER_INVITED: "Someone was invited to the organization.",
    MEMBER_JOINED: "An invited person accepted and joined the organization.",
    ITEM_COMPLETED: "A queue item has all its reviews, and they agree.",
    ITEM_NEEDS_ADJUDICATION: "A queue item's reviews disagree: a senior should decide.",
    COMMENT_MENTIONED: "A comment mentions one or more people.",
    ITEM_ASSIGNED: "Items were pushed to a reviewer (round robin or by hand); one event per "
    "reviewer and push, never per claim.",
    QUEUE_BACKLOG: "A queue's open items rose to its backlog threshold.",
    QUEUE_COMPLETED: "A queue's last open item was reviewed: nothing is left to do.",
    CALIBRATION_PASSED: "A reviewer passed a calibration set.",
    CALIBRATION_FAILED: "A reviewer failed a calibration set.",
    AGREEMENT_ALERT: "Agreement between reviewers on a question fell below its threshold.",
    ALIGNMENT_ALERT: "An automated metric disagrees with the reviewers beyond its threshold.",
    ROUTING_RULE_FAILING: "A routing rule started failing (once, until it routes again); the "
    "project's other rules go on routing.",
    DATASET_ITEM_PROMOTED: "Items were promoted into a dataset (one event per promotion).",
}

# Types addressed to people, who choose how they hear of them (email, Slack direct
# message, or off: projects/notifications/personal.py), destinations or not.
PERSONAL_TYPES = frozenset({COMMENT_MENTIONED, ITEM_ASSIGNED})

# Largest payload an event may carry, as JSON.
MAX_PAYLOAD_BYTES = 20 * 1024
