"""Page input through Django forms: the fields every page form shares and one way to
say what was refused.

A page reads ``request.POST`` and ``request.GET`` only through a form (``<app>/forms.py``),
as the API reads bodies only through serializers. The fields here refuse what
PostgreSQL cannot store with ``hitl.text``'s reasons (the middleware refuses NUL and lone
surrogates first; the forms say it again, beside the field, for whoever calls them
without a request), and numbers outside 64 bits. ``error_lines`` turns a service's
``DomainError`` into sentences, ``form_error_lines`` a form's errors, and
``form_add_domain_error`` puts a service's per-field reasons beside the fields.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from hitl import text
from hitl.exceptions import DomainError


def storable_text(value: str) -> None:
    """Refuses text PostgreSQL cannot store (NUL, lone surrogates), with the reason."""
    problem = text.unstorable(value) if isinstance(value, str) else None
    if problem:
        raise ValidationError(problem, code="unstorable")


def storable_query(query: str) -> str:
    """Refuses a query string (a saved filter) whose names or values, once decoded, cannot
    be stored: the middleware checks the form field itself, not what it encodes."""
    for key, values in QueryDict(query).lists():
        for value in [key, *values]:
            problem = text.unstorable(value)
            if problem:
                raise ValidationError(f"{key[:64]!r}: {problem}", code="unstorable")
    return query


class TextField(forms.CharField):
    """Text typed into a page: stripped, at most ``max_length`` characters (200 unless
    told), and storable."""

    default_validators = [storable_text]

    def __init__(self, *, max_length: int | None = 200, **kwargs: Any) -> None:
        super().__init__(max_length=max_length, **kwargs)


class WholeNumberField(forms.IntegerField):
    """A whole number, within 64 bits unless narrower bounds are given: a typed
    ``99999999999999999999`` is refused beside the field, not at the database."""

    def __init__(
        self, *, min_value: int = text.INT64_MIN, max_value: int = text.INT64_MAX, **kwargs: Any
    ) -> None:
        super().__init__(min_value=min_value, max_value=max_value, **kwargs)


class PageNumberForm(forms.Form):
    """``?page=`` of a paginated list: anything that is not a page number reads as the
    first page (``Paginator.get_page`` then keeps it within the pages there are)."""

    page = WholeNumberField(required=False, min_value=1)

    def number(self) -> int:
        return (self.cleaned_data.get("page") or 1) if self.is_valid() else 1


def _join(reasons: Any) -> str:
    return ", ".join(str(r) for r in reasons) if isinstance(reasons, list | tuple) else str(reasons)


def error_lines(exc: DomainError, *, skip: tuple[str, ...] = ()) -> list[str]:
    """A service error as sentences: the message, then each field's reasons (a nested
    field as ``name inner: reasons``; names in ``skip`` left to the caller)."""
    lines = [exc.message]
    details = exc.details
    if isinstance(details, dict):
        for name, reasons in details.items():
            if name in skip:
                continue
            if isinstance(reasons, dict):
                lines.extend(f"{name} {inner}: {_join(why)}" for inner, why in reasons.items())
            else:
                lines.append(f"{name}: {_join(reasons)}")
    elif isinstance(details, list):
        lines.extend(str(d) for d in details)
    return lines


def form_error_lines(form: forms.BaseForm) -> list[str]:
    """A form's errors as sentences, each field's prefixed with its label."""
    lines = [str(e) for e in form.non_field_errors()]
    for name, errors in form.errors.items():
        if name == forms.forms.NON_FIELD_ERRORS:
            continue
        field = form.fields.get(name)
        label = str(field.label) if field is not None and field.label else name.replace("_", " ")
        lines.extend(f"{label.capitalize()}: {e}" for e in errors)
    return lines


def form_add_domain_error(
    form: forms.BaseForm, exc: DomainError, *, fields: dict[str, str] | None = None
) -> None:
    """Puts a service's refusal on ``form``: the message as the form's own error, each
    field's reasons beside that field when the form has it (``fields`` maps a service's
    name to the form's), else after the message."""
    details = exc.details if isinstance(exc.details, dict) else {}
    unplaced = []
    for name, reasons in details.items():
        target = (fields or {}).get(name, name)
        if target in form.fields and not isinstance(reasons, dict):
            for reason in reasons if isinstance(reasons, list | tuple) else [reasons]:
                form.add_error(target, str(reason))
        else:
            unplaced.append(name)
    others = error_lines(DomainError("", details={n: details[n] for n in unplaced}))[1:]
    form.add_error(None, " ".join([exc.message, *others]))
