"""What the trace pages read from a request beside the trace filter: the explorer's page
parameters (columns, cursor, saved view), saving a view, and the project's retention.

The filter's own parameters are read by its FilterSet (``traces.filters.TraceFilter``
through ``traces.selectors.trace_list_filter_apply``), the same as the API's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from hitl.forms import TextField, WholeNumberField, storable_query
from traces.filters import TraceSort, parse_sort, parse_sort_cursor
from traces.models import RETENTION_MAX_DAYS

FOLLOW_DEFAULT = "default"
OWN_POLICY = "days"


class KnownChoicesField(forms.MultipleChoiceField):
    """Repeated choices where an unknown one is left out rather than refused: a bookmark
    naming a column that no longer exists still opens."""

    def to_python(self, value: Any) -> list[str]:
        known = {str(key) for key, _label in self.choices}
        return [v for v in super().to_python(value) if v in known]


class SortField(TextField):
    """The list's order (``traces.filters.parse_sort``): newest first when left empty."""

    def clean(self, value: Any) -> TraceSort:
        return parse_sort(super().clean(value))


class ExplorerPageForm(forms.Form):
    """The explorer's own parameters: chosen columns, the order, the cursor of the page
    (it belongs to that order), the saved view opened."""

    col = KnownChoicesField(required=False)
    sort = SortField(required=False, max_length=300, label="Sort")
    after = TextField(required=False, max_length=300, label="Page")
    view = WholeNumberField(required=False, min_value=1, label="Saved view")

    def __init__(self, *args: Any, columns: Iterable[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["col"].choices = list(columns)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        raw = data.get("after")
        sort = data.get("sort")
        if not raw:
            data["after"] = None
        elif sort is not None:
            cursor = parse_sort_cursor(sort, raw)
            if cursor is None:
                self.add_error("after", "Not a page of this list: open the first page again.")
            else:
                data["after"] = cursor
        return data


class SavedViewDeleteForm(forms.Form):
    """A saved view's delete button: acted on only with ``confirm`` (ticked by the
    button's dialog or by the page that asks first)."""

    confirm = forms.BooleanField(required=False)


class SavedViewForm(forms.Form):
    """Save the explorer's filter (its query string), columns and order under a name."""

    name = TextField(error_messages={"required": "Give the view a name."})
    query = TextField(required=False, max_length=8000, strip=False, label="Filter")
    col = forms.MultipleChoiceField(required=False, label="Columns")
    sort = SortField(required=False, max_length=300, label="Sort")

    def __init__(self, *args: Any, columns: Iterable[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["col"].choices = list(columns)

    def clean_query(self) -> str:
        return storable_query(self.cleaned_data["query"])


class TraceActionForm(forms.Form):
    """One action on a trace from its page (``traces.hooks.TraceAction``): the choice
    among the action's own (a queue, a dataset of the project) and, where offered,
    whether the trace's output is accepted as the expected one (unticked: it is not)."""

    choice = forms.ChoiceField(error_messages={"required": "Choose one."})
    accept_output = forms.BooleanField(required=False)

    def __init__(self, *args: Any, choices: Iterable[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["choice"].choices = list(choices)
        self.fields["choice"].error_messages["invalid_choice"] = (
            "Choose one of this project's, as listed."
        )


RETENTION_DAYS_ERROR = f"Enter a whole number of days from 0 to {RETENTION_MAX_DAYS}."


class TraceRetentionForm(forms.Form):
    """The project follows the default retention, or keeps traces ``days`` days (0:
    keep everything); the days are read only for the project's own retention."""

    mode = forms.ChoiceField(
        choices=[(FOLLOW_DEFAULT, "Follow the default"), (OWN_POLICY, "Own retention")],
        required=False,
    )
    days = TextField(required=False, max_length=20, label="Days to keep traces")

    def clean_days(self) -> int | None:
        if (self.cleaned_data.get("mode") or OWN_POLICY) == FOLLOW_DEFAULT:
            return None
        raw = self.cleaned_data["days"]
        if not raw.isascii() or not raw.isdigit() or int(raw) > RETENTION_MAX_DAYS:
            raise ValidationError(RETENTION_DAYS_ERROR)
        return int(raw)


class TracePageQueryForm(forms.Form):
    """The trace page's query: ``?span=`` (the span shown beside the tree, by span id;
    anything longer than a span id reads as none)."""

    span = TextField(required=False, max_length=200)

    def span_id(self) -> str | None:
        return (self.cleaned_data.get("span") or None) if self.is_valid() else None
