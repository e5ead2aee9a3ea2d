"""What a column can hold: the check every tenant-owned row passes before it is saved.

A text longer than its ``max_length`` or an integer outside its column's range
(``integer``, ``bigint``, ...) would reach PostgreSQL and fail there as a 500. Pages and
API views reach the same services, and not every input path declares the model's limits
(a page that reads a name into a service, a serializer field declared by hand), so the
model refuses such a value itself, from ``TenantModel.save()``, with a ``DomainError``
that names each field; every page and API view already answers that as a 400 with the
reason.
"""

from __future__ import annotations

from django.db import connection, models

from hitl.exceptions import DomainError


def _integer_range(field: models.Field) -> tuple[int | None, int | None]:
    if isinstance(field, models.ForeignKey):
        field = field.target_field
    if not isinstance(field, models.IntegerField | models.AutoField):
        return None, None
    return connection.ops.integer_field_range(field.get_internal_type())


def column_overflows(instance: models.Model) -> dict[str, list[str]]:
    """Each concrete field of ``instance`` whose value its column cannot hold, with why."""
    errors: dict[str, list[str]] = {}
    for field in instance._meta.concrete_fields:
        value = getattr(instance, field.attname, None)
        if isinstance(value, str) and field.max_length and len(value) > field.max_length:
            errors[field.name] = [f"At most {field.max_length} characters (this has {len(value)})."]
        elif isinstance(value, int) and not isinstance(value, bool):
            low, high = _integer_range(field)
            if (low is not None and value < low) or (high is not None and value > high):
                errors[field.name] = [f"Out of range: between {low} and {high}."]
    return errors


def refuse_column_overflow(instance: models.Model) -> None:
    errors = column_overflows(instance)
    if errors:
        fields = ", ".join(sorted(errors))
        raise DomainError(f"A value is too large to store: {fields}.", details=errors)
