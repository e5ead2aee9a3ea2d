"""Tenancy that fails closed.

Every tenant-owned model inherits :class:`TenantModel`. Its default manager refuses to
build a query unless a scope is entered, and then filters by it. A scope is one of:

* one organization, :func:`tenant_scope` (requests, tasks, services): reads and writes
  of that organization only; :func:`current_organization_id` names it;
* a read scope of a set of organizations, :func:`organizations_read_scope` (the admin
  of a staff user who belongs to several): the manager filters ``organization_id__in``;
* every organization, :func:`all_tenants_scope_for_superuser` (the admin of the people
  who run the installation): the manager does not filter. The name is loud on purpose.

Writes need exactly one organization: :func:`current_organization_id` raises in a set or
all-tenants scope, and ``save()`` refuses a row outside the set in scope. Reading across
organizations outside any scope takes the loudly named ``unscoped_across_tenants``
manager, which only membership resolution and a few reviewed maintenance paths use.

The scope lives in a ``ContextVar``, so it is per thread and per asyncio task: a Celery
worker thread or a request never inherits another's tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import models

from hitl.limits import refuse_column_overflow


@dataclass(frozen=True)
class _Scope:
    """What the tenant manager may read: one organization, a set, or all (None)."""

    organization_ids: frozenset[int] | None
    single: bool  # one organization that writes may use

    @property
    def label(self) -> str:
        if self.organization_ids is None:
            return "all organizations (superuser)"
        return f"organizations {sorted(self.organization_ids)}"


_current_scope: ContextVar[_Scope | None] = ContextVar("hitl_current_tenant_scope", default=None)


class TenantScopeError(RuntimeError):
    """A tenant-owned model was queried with no organization in scope, or written in a
    scope that does not name exactly its organization."""


def _single(organization_id: int) -> _Scope:
    if not organization_id:
        raise TenantScopeError("tenant_scope() needs an organization id")
    return _Scope(frozenset({int(organization_id)}), single=True)


@contextmanager
def _entered(scope: _Scope | None) -> Iterator[None]:
    token = _current_scope.set(scope)
    try:
        yield
    finally:
        _current_scope.reset(token)


@contextmanager
def tenant_scope(organization_id: int) -> Iterator[int]:
    """Run the block with ``organization_id`` as the only visible tenant."""
    scope = _single(organization_id)
    with _entered(scope):
        yield int(organization_id)


@contextmanager
def organizations_read_scope(organization_ids: Iterable[int]) -> Iterator[frozenset[int]]:
    """Run the block reading the rows of ``organization_ids`` (an empty set reads
    nothing). Writes need one organization: creating a row here is refused."""
    ids = frozenset(int(organization_id) for organization_id in organization_ids)
    with _entered(_Scope(ids, single=False)):
        yield ids


@contextmanager
def all_tenants_scope_for_superuser() -> Iterator[None]:
    """Run the block reading every organization's rows: the admin of a superuser only.
    Every use must be reviewed; nothing a customer can reach may enter it."""
    with _entered(_Scope(None, single=False)):
        yield


def enter_tenant_scope(organization_id: int) -> None:
    """Set the scope for the rest of the current context (used by request handlers,
    which reset it when the response is finalized, see :func:`scope_boundary`)."""
    _current_scope.set(_single(organization_id))


@contextmanager
def scope_boundary() -> Iterator[None]:
    """Start with no tenant and restore the outer scope afterwards: wraps a request so
    whatever scope its handler enters ends with it."""
    with _entered(None):
        yield


def current_organization_id() -> int:
    """The one organization in scope; raises outside a single-organization scope."""
    scope = _current_scope.get()
    if scope is None:
        raise TenantScopeError("No organization in scope")
    if not scope.single:
        raise TenantScopeError(f"A read scope of {scope.label} names no single organization")
    (organization_id,) = scope.organization_ids
    return organization_id


def current_organization_id_or_none() -> int | None:
    """The one organization in scope, or None outside a single-organization scope."""
    scope = _current_scope.get()
    if scope is None or not scope.single:
        return None
    (organization_id,) = scope.organization_ids
    return organization_id


def scope_sql(column: str) -> tuple[str, list[object]]:
    """The tenant manager's filter for hand-written SQL: a condition on ``column`` (an
    ``organization_id`` column) with its parameters (``%s`` placeholders), reading the
    organizations in scope only. Raises outside any scope, as the manager does."""
    scope = _current_scope.get()
    if scope is None:
        raise TenantScopeError(
            "Tenant rows read outside a tenant scope; wrap the call in "
            "hitl.tenancy.tenant_scope(organization_id)"
        )
    if scope.organization_ids is None:
        return "true", []
    if scope.single:
        (organization_id,) = scope.organization_ids
        return f"{column} = %s", [organization_id]
    return f"{column} = ANY(%s)", [sorted(scope.organization_ids)]


class TenantManager(models.Manager):
    """Default manager of tenant-owned models: no scope, no query."""

    def get_queryset(self) -> models.QuerySet:
        scope = _current_scope.get()
        if scope is None:
            raise TenantScopeError(
                f"{self.model.__name__} queried outside a tenant scope; wrap the call in "
                "hitl.tenancy.tenant_scope(organization_id)"
            )
        queryset = super().get_queryset()
        if scope.organization_ids is None:
            return queryset
        if scope.single:
            (organization_id,) = scope.organization_ids
            return queryset.filter(organization_id=organization_id)
        return queryset.filter(organization_id__in=scope.organization_ids)

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
        scope = _current_scope.get()
        if scope is not None:
            if self.organization_id is None:
                if not scope.single:
                    raise TenantScopeError(
                        f"A new {type(self).__name__} needs one organization in scope, "
                        f"not a read scope of {scope.label}"
                    )
                (self.organization_id,) = scope.organization_ids
            allowed = scope.organization_ids
            if allowed is not None and self.organization_id not in allowed:
                raise TenantScopeError(
                    f"Refusing to save {type(self).__name__} of organization "
                    f"{self.organization_id} inside the scope of {scope.label}"
                )
        # A text or a number its column cannot hold is refused here, naming the field.
        refuse_column_overflow(self)
        super().save(*args, **kwargs)


def assert_writing_in_scope(organization_id: int) -> None:
    """Raw-SQL writers call this before writing rows of ``organization_id``: the ORM's
    ``save()`` check does not see their statements, so they state it themselves."""
    scoped = current_organization_id()
    if int(organization_id) != scoped:
        raise TenantScopeError(
            f"Refusing a raw write of organization {organization_id} inside the scope of "
            f"organization {scoped}"
        )
