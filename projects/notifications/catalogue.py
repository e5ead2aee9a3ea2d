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
}

# Largest payload an event may carry, as JSON.
MAX_PAYLOAD_BYTES = 20 * 1024
