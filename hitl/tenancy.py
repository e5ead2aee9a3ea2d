"""Tenancy that fails closed.

Every tenant-owned model inherits :class:`TenantModel`. Its default manager refuses to
build a query unless an organization is in scope (:func:`tenant_scope`), and then filters
by it. Reading across organizations takes the loudly named ``unscoped_across_tenants``
manager, which only membership resolution, the admin and a few reviewed maintenance paths
use.

The scope lives in a ``ContextVar``, so it is per thread and per asyncio task: a Celery
worker thread or a request never inherits another's tenant.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import models

_current_organization_id: ContextVar[int | None] = ContextVar(
    "hitl_current_organization_id", default=None
)


class TenantScopeError(RuntimeError):
    """A tenant-owned model was queried with no organization in scope."""


@contextmanager
def tenant_scope(organization_id: int) -> Iterator[int]:
    """Run the block with ``organization_id`` as the only visible tenant."""
    if not organization_id:
        raise TenantScopeError("tenant_scope() needs an organization id")
    token = _current_organization_id.set(int(organization_id))
    try:
        yield int(organization_id)
    finally:
        _current_organization_id.reset(token)


def enter_tenant_scope(organization_id: int) -> None:
    """Set the scope for the rest of the current context (used by request handlers,
    which reset it when the response is finalized)."""
    _current_organization_id.set(int(organization_id))


def current_organization_id() -> int:
    organization_id = _current_organization_id.get()
    if organization_id is None:
        raise TenantScopeError("No organization in scope")
    return organization_id


def current_organization_id_or_none() -> int | None:
    return _current_organization_id.get()


class TenantManager(models.Manager):
    """Default manager of tenant-owned models: no scope, no query."""

    def get_queryset(self) -> models.QuerySet:
        organization_id = _current_organization_id.get()
        if organization_id is None:
            raise TenantScopeError(
                f"{self.model.__name__} queried outside a tenant scope; wrap the call in "
                "hitl.tenancy.tenant_scope(organization_id)"
            )
        return super().get_queryset().filter(organization_id=organization_id)

    def none(self) -> models.QuerySet:
        # An empty queryset reads nothing, so it needs no scope (schema generation uses it).
        return super().get_queryset().none()


class TenantModel(models.Model):
    """Base of every row that belongs to one organization."""

    organization = models.ForeignKey(
        "projects.Organization", on_delete=models.CASCADE, related_name="+", editable=False
    )

    objects = TenantManager()
    # Crossing tenants is deliberate and rare: the name makes it stand out in review.
    unscoped_across_tenants = models.Manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        scoped = _current_organization_id.get()
        if self.organization_id is None and scoped is not None:
            self.organization_id = scoped
        if scoped is not None and self.organization_id != scoped:
            raise TenantScopeError(
                f"Refusing to save {type(self).__name__} of organization "
                f"{self.organization_id} inside the scope of organization {scoped}"
            )
        super().save(*args, **kwargs)


@contextmanager
def scope_boundary() -> Iterator[None]:
    """Start with no tenant and restore the outer scope afterwards: wraps a request so
    whatever scope its handler enters ends with it."""
    token = _current_organization_id.set(None)
    try:
        yield
    finally:
        _current_organization_id.reset(token)


def assert_writing_in_scope(organization_id: int) -> None:
    """Raw-SQL writers call this before writing rows of ``organization_id``: the ORM's
    ``save()`` check does not see their statements, so they state it themselves."""
    scoped = current_organization_id()
    if int(organization_id) != scoped:
        raise TenantScopeError(
            f"Refusing a raw write of organization {organization_id} inside the scope of "
            f"organization {scoped}"
        )
