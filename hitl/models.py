"""The kernel's tables: the outbox of work that must reach a worker (hitl/outbox.py)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from hitl.tenancy import TenantModel


class OutboxState(models.TextChoices):
    PENDING = "pending", "pending"  # waiting to be published (again, after a retry)
    PUBLISHED = "published", "published"  # handed to the broker, not yet done
    DONE = "done", "done"
    FAILED = "failed", "failed"  # given up: a permanent error or too many attempts


class OutboxMessage(TenantModel):
    """One piece of work, written in the same transaction as its cause.

    ``kwargs`` are what the handler receives (ids, never objects); ``secret_kwargs``
    (an invitation token) are added to them, are never shown, and are erased once the
    message is done or failed.
    """

    task = models.CharField(max_length=100)
    kwargs = models.JSONField(default=dict)
    secret_kwargs = models.JSONField(default=dict, editable=False)
    state = models.CharField(
        max_length=16, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    # Not published before this time (a retry's backoff).
    available_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    # When a worker last started running it (committed before the run's own transaction,
    # database time). Claimed since its last publish, not done, and its row no longer
    # locked by the run: the worker died, and the relay publishes it again at once.
    claimed_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The relay's scan: only open messages, so the index stays small.
            models.Index(
                fields=["state", "available_at"],
                condition=models.Q(state__in=["pending", "published"]),
                name="outbox_open",
            ),
            models.Index(fields=["organization", "-created_at"], name="outbox_org_created"),
        ]

    def __str__(self) -> str:
        return f"{self.task} #{self.pk} ({self.state})"
