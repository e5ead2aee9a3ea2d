"""The change log: every history row of every model that keeps an edit history, in the
organizations the reader may see, in one list (the admin's "Change log").

Each model's history is its own table, so there is no single table to page through:
:func:`changelog_page` asks each historical model for its newest ``size + 1`` rows that
pass the filters and come after the cursor, merges them by ``(history_date, model,
history_id)`` newest first and keeps ``size``. A page costs one bounded, indexed query
per historical model, however long the history is; the next page starts after the last
row shown (keyset paging, no offsets). Every query is limited to the reader's
organizations (``organization_ids``; None for the superuser) on top of the tenant scope
the admin runs in, so the list fails closed.

Rows are worded by :func:`hitl.history.history_entries`, the one wording of history
the object history pages and the API use. :func:`export_csv` and :func:`export_json`
write the filtered rows (up to :data:`EXPORT_LIMIT`) as audit evidence; the CSV goes
through :mod:`hitl.csv_safe` like every CSV of the product.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django import forms
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Model, Q, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from hitl import csv_safe
from hitl.history import history_entries

PAGE_SIZE = 50
EXPORT_LIMIT = 5000
MAX_ID = 2**63 - 1
ACTIONS = [("+", "created"), ("~", "changed"), ("-", "deleted")]
EXPORT_COLUMNS = [
    "when",
    "who",
    "user",
    "api_key_prefix",
    "source",
    "model",
    "object_id",
    "object",
    "action",
    "changes",
    "reason",
    "request_id",
    "history_id",
]


def historied_models() -> list[type[Model]]:
    """Every model that keeps an edit history, by label."""
    found = [
        model
        for model in apps.get_models()
        if hasattr(model._meta, "simple_history_manager_attribute")
    ]
    return sorted(found, key=lambda model: model._meta.label_lower)


def _organization_field(model: type[Model]) -> str:
    """The column naming a row's organization (an organization is its own)."""
    names = {f.attname for f in model._meta.concrete_fields}
    if "organization_id" in names:
        return "organization_id"
    if model._meta.label_lower == "projects.organization":
        return "id"
    raise LookupError(f"{model._meta.label} keeps history but names no organization")


def _model_choices() -> list[tuple[str, str]]:
    return [("", "every model")] + [
        (model._meta.label_lower, f"{model._meta.verbose_name} ({model._meta.app_label})")
        for model in historied_models()
    ]


EXPORTS = [("csv", "CSV"), ("json", "JSON")]


class ChangeLogForm(forms.Form):
    """The change log's filters; every one optional. ``cursor`` is the page to start
    after (given by the previous page)."""

    # An email, found as it is typed (``admin:changelog-people``, people in the reader's
    # organizations only); a user id is taken too (links made before the picker).
    person = forms.CharField(
        required=False,
        max_length=254,
        help_text="an email; type a few letters to find people of your organizations",
        widget=forms.TextInput(attrs={"list": "changelog-people", "autocomplete": "off"}),
    )
    api_key = forms.CharField(
        required=False, max_length=32, label="API key", help_text="its prefix, as shown"
    )
    model = forms.ChoiceField(required=False, choices=())
    object_id = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID, label="Object id")
    action = forms.ChoiceField(required=False, choices=[("", "any action"), *ACTIONS])
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))
    cursor = forms.CharField(required=False, max_length=120, widget=forms.HiddenInput)
    # Empty: the page; csv or json: the filtered rows as a download.
    export = forms.ChoiceField(
        required=False, choices=[("", "the page"), *EXPORTS], widget=forms.HiddenInput
    )

    def __init__(self, data: Any, *, organization_ids: frozenset[int] | None) -> None:
        super().__init__(data, label_suffix="")
        self.people = people_of(organization_ids)
        self.fields["person"].widget.attrs["data-people-url"] = reverse("admin:changelog-people")
        self.fields["model"].choices = _model_choices()

    def clean_person(self) -> Any:
        """The person asked for, among the reader's organizations' people (another
        organization's answers as no one)."""
        typed = (self.cleaned_data.get("person") or "").strip()
        if not typed:
            return None
        found = None
        if typed.isdigit() and len(typed) <= 18:
            found = self.people.filter(pk=int(typed)).first()
        if found is None:
            found = self.people.filter(email__iexact=typed).first()
        if found is None:
            raise forms.ValidationError("No one with that email in your organizations.")
        return found

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError("“From” is after “To”.")
        cursor = data.get("cursor")
        if cursor:
            try:
                data["cursor"] = Cursor.parse(cursor)
            except ValueError:
                self.add_error("cursor", "Not a page of this list: start again from the first.")
        else:
            data["cursor"] = None
        return data


PEOPLE_LIMIT = 20


def people_of(organization_ids: frozenset[int] | None) -> QuerySet[Any]:
    """The people of the reader's organizations (everyone for the superuser), by email."""
    people = get_user_model().objects.order_by("email")
    if organization_ids is not None:
        people = people.filter(memberships__organization_id__in=organization_ids).distinct()
    return people


def people_matching(
    typed: str, organization_ids: frozenset[int] | None, *, limit: int = PEOPLE_LIMIT
) -> list[str]:
    """The emails the person picker offers for what is typed: people of the reader's
    organizations whose email contains it, those starting with it first, at most
    ``limit`` (nothing for text no email holds)."""
    typed = typed.strip()
    if not typed or len(typed) > 254 or "\x00" in typed:
        return []
    emails = list(
        people_of(organization_ids)
        .filter(email__icontains=typed)
        .values_list("email", flat=True)[: limit * 5]
    )
    lowered = typed.lower()
    emails.sort(key=lambda email: (not email.lower().startswith(lowered), email))
    return emails[:limit]


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: its last row's ``(history_date, model label, history_id)``."""

    date: dt.datetime
    label: str
    history_id: int

    def __str__(self) -> str:
        return f"{self.date.isoformat()}|{self.label}|{self.history_id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        parts = text.split("|")
        if len(parts) != 3:
            raise ValueError(text)
        date = dt.datetime.fromisoformat(parts[0])
        if date.tzinfo is None:
            raise ValueError(text)
        history_id = int(parts[2])
        if not 0 < history_id <= MAX_ID:
            raise ValueError(text)
        return cls(date, parts[1], history_id)


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _filtered(
    model: type[Model], filters: dict[str, Any], organization_ids: frozenset[int] | None
) -> QuerySet:
    historical = model.history.model
    rows = historical._default_manager.all()
    if organization_ids is not None:
        rows = rows.filter(**{f"{_organization_field(model)}__in": organization_ids})
    if filters.get("person") is not None:
        rows = rows.filter(history_user_id=filters["person"].pk)
    if filters.get("api_key"):
        rows = rows.filter(history_api_key_prefix__startswith=filters["api_key"])
    if filters.get("object_id") is not None:
        rows = rows.filter(**{model._meta.pk.attname: filters["object_id"]})
    if filters.get("action"):
        rows = rows.filter(history_type=filters["action"])
    if filters.get("since"):
        rows = rows.filter(history_date__gte=_day_start(filters["since"]))
    if filters.get("until"):
        rows = rows.filter(history_date__lt=_day_start(filters["until"] + dt.timedelta(days=1)))
    cursor: Cursor | None = filters.get("cursor")
    if cursor is not None:
        label = model._meta.label_lower
        if label < cursor.label:
            rows = rows.filter(history_date__lte=cursor.date)
        elif label > cursor.label:
            rows = rows.filter(history_date__lt=cursor.date)
        else:
            rows = rows.filter(
                Q(history_date__lt=cursor.date)
                | Q(history_date=cursor.date, history_id__lt=cursor.history_id)
            )
    return rows


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next_cursor: Cursor | None


def changelog_page(
    filters: dict[str, Any], organization_ids: frozenset[int] | None, *, size: int = PAGE_SIZE
) -> Page:
    """The newest ``size`` history rows passing ``filters`` (a cleaned
    :class:`ChangeLogForm`) after its cursor, in ``organization_ids`` (None: all),
    each a :func:`hitl.history.history_entries` entry with ``model``, ``object_id``,
    ``object`` (the object's name now, or "(deleted)") and ``history_url``."""
    chosen = filters.get("model")
    models = [m for m in historied_models() if not chosen or m._meta.label_lower == chosen]
    candidates: list[tuple[dt.datetime, str, int, type[Model]]] = []
    for model in models:
        label = model._meta.label_lower
        newest = _filtered(model, filters, organization_ids).order_by(
            "-history_date", "-history_id"
        )
        for date, history_id in newest.values_list("history_date", "history_id")[: size + 1]:
            candidates.append((date, label, history_id, model))
    candidates.sort(key=lambda row: row[:3], reverse=True)
    shown = candidates[:size]
    more = len(candidates) > size

    by_model: dict[type[Model], list[int]] = defaultdict(list)
    for _date, _label, history_id, model in shown:
        by_model[model].append(history_id)
    entries: dict[tuple[str, int], dict[str, Any]] = {}
    for model, ids in by_model.items():
        historical = model.history.model
        worded = history_entries(historical._default_manager.filter(history_id__in=ids))
        pk_name = model._meta.pk.attname
        object_ids = dict(
            historical._default_manager.filter(history_id__in=ids).values_list(
                "history_id", pk_name
            )
        )
        names = _names(model, set(object_ids.values()))
        for entry in worded:
            object_id = object_ids[entry["history_id"]]
            entry.update(
                model=str(model._meta.verbose_name),
                model_label=model._meta.label_lower,
                object_id=object_id,
                object=names.get(object_id, "(deleted)"),
                history_url=_history_url(model, object_id),
            )
            entries[(model._meta.label_lower, entry["history_id"])] = entry
    rows = [entries[(label, history_id)] for _date, label, history_id, _model in shown]
    last = shown[-1] if shown and more else None
    return Page(rows, Cursor(last[0], last[1], last[2]) if last else None)


def _names(model: type[Model], pks: set[Any]) -> dict[Any, str]:
    """pk -> the object's name now, read in scope, without its JSON columns."""
    from django.db.models import JSONField

    heavy = [f.name for f in model._meta.concrete_fields if isinstance(f, JSONField)]
    return {row.pk: str(row) for row in model._default_manager.filter(pk__in=pks).defer(*heavy)}


def _history_url(model: type[Model], object_id: Any) -> str:
    opts = model._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[object_id])
    except NoReverseMatch:
        return ""


def _flat(entry: dict[str, Any]) -> dict[str, Any]:
    lines = []
    for line in entry["lines"]:
        lines.append(
            f"{line['field']}: {line['new']}"
            if line["old"] is None
            else f"{line['field']}: {line['old']} → {line['new']}"
        )
    return {
        "when": entry["when"].isoformat(),
        "who": entry["who"],
        "user": entry["user"] or "",
        "api_key_prefix": entry["api_key_prefix"] or "",
        "source": entry["source"] or "",
        "model": entry["model_label"],
        "object_id": entry["object_id"],
        "object": entry["object"],
        "action": entry["kind"],
        "changes": "; ".join(lines),
        "reason": entry["reason"],
        "request_id": entry["request_id"] or "",
        "history_id": entry["history_id"],
    }


def export_rows(
    filters: dict[str, Any], organization_ids: frozenset[int] | None
) -> list[dict[str, Any]]:
    """The filtered rows from the newest, up to :data:`EXPORT_LIMIT`, for an export."""
    page = changelog_page({**filters, "cursor": None}, organization_ids, size=EXPORT_LIMIT)
    return page.rows


def export_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV (one line a row, changes joined by "; "), formula-safe."""
    return csv_safe.rows_text([_flat(entry) for entry in rows], EXPORT_COLUMNS)


def export_json(rows: list[dict[str, Any]]) -> str:
    """The rows as JSON: the flat columns plus each change as ``{field, old, new}``."""
    payload = [
        {**_flat(entry), "changes": entry["lines"], "stored_changes": entry["changes"]}
        for entry in rows
    ]
    return json.dumps(payload, cls=DjangoJSONEncoder, ensure_ascii=False, indent=1)
