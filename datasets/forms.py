"""What the datasets pages read from a request: a new dataset, the page of a version's
items, sending items to a review queue, the diff of two versions, promotion (one source,
or every trace a filter matches), import, export, and the pages and comparison of
experiments. Every field is checked here (``hitl.forms``: storable text, numbers within
bounds, choices among the known ones, rows of this project only); the services check
the rules and the views put their refusals beside the fields.

Querysets of tenant rows are set in ``__init__``, inside the page's tenant scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from datasets.models import Dataset, DatasetItem, ExportFormat
from hitl.forms import TextField, WholeNumberField, storable_query
from hitl.text import unstorable
from traces import filter_builder

# DatasetItem.key and ExperimentResult.key; a trace's or span's external id.
KEY_LENGTH = 300
EXTERNAL_ID_LENGTH = 256


def numbers_field(label: str) -> forms.TypedChoiceField:
    """One of the dataset's version numbers (choices set in ``__init__``)."""
    return forms.TypedChoiceField(
        coerce=int,
        required=False,
        empty_value=None,
        label=label,
        error_messages={"invalid_choice": "The dataset has no version %(value)s."},
    )


def version_choices(numbers: Iterable[int]) -> list[tuple[str, str]]:
    return [(str(n), str(n)) for n in numbers]


class DatasetForm(forms.Form):
    """A new dataset: its name and an optional description (any length, as the API)."""

    name = TextField(error_messages={"required": "Give the dataset a name."})
    description = TextField(required=False, max_length=None)


class VersionPageForm(forms.Form):
    """``?version=<n>&after=<key>`` of a dataset's items: the version (default: the
    newest) and the key the page starts after."""

    version = numbers_field("Version")
    after = TextField(required=False, max_length=KEY_LENGTH, strip=False, label="Page")

    def __init__(self, *args: Any, numbers: Iterable[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = version_choices(numbers)


class SendToQueueForm(forms.Form):
    """Items of the dataset (``item_id``, repeated; or ``all``) to an open review queue of
    the project; ``next``: the page to go back to."""

    queue_id = forms.ModelChoiceField(
        queryset=None,
        label="Review queue",
        error_messages={
            "required": "Choose a review queue of this project.",
            "invalid_choice": "Choose a review queue of this project.",
        },
    )
    item_id = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        label="Items",
        error_messages={
            "invalid_choice": "Item %(value)s is not in this dataset.",
            "invalid_pk_value": "“%(pk)s” is not an item.",
        },
    )
    all = forms.BooleanField(required=False)
    next = TextField(required=False, max_length=2000)

    def __init__(self, *args: Any, dataset: Dataset, queues: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["queue_id"].queryset = queues
        self.fields["item_id"].queryset = DatasetItem.objects.filter(dataset=dataset)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("item_id") and not data.get("all") and "item_id" not in self.errors:
            self.add_error("item_id", "Select the items to send, or send every item.")
        return data

    def item_ids(self) -> list[int] | None:
        """The chosen items' ids; None: every item the dataset holds."""
        items = self.cleaned_data["item_id"]
        return [item.pk for item in items] if items else None


class VersionDiffForm(forms.Form):
    """``?from=<n>&to=<n>``: the two versions to compare (neither: no diff)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, label in (("from", "Compare version"), ("to", "With version")):
            self.fields[name] = WholeNumberField(required=False, min_value=1, label=label)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if any(data.get(n) is not None for n in ("from", "to")):
            for name in ("from", "to"):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, "Choose two versions.")
        return data

    def asked(self) -> bool:
        return self.is_valid() and self.cleaned_data.get("from") is not None


class PromoteForm(forms.Form):
    """One source to promote (``trace`` with an optional ``span``, or a reviewed queue
    ``item``), the dataset, and what the person adds: a failure reason, the expected
    output typed (or the trace's output as shown), ``accept_output`` (a reviewed item's
    model output accepted), ``update_existing``.

    ``describe`` (the page's) tells what a source is, None when it is not in this
    project. On a GET (``posting`` False) only the source and dataset are read, and
    neither is required."""

    trace = TextField(required=False, max_length=EXTERNAL_ID_LENGTH, label="Trace id")
    span = TextField(required=False, max_length=EXTERNAL_ID_LENGTH, label="Span id")
    item = WholeNumberField(required=False, min_value=1, label="Reviewed item")
    dataset = forms.ModelChoiceField(
        queryset=None,
        required=False,
        error_messages={"invalid_choice": "Choose a dataset of this project."},
    )
    failure_reason = TextField(required=False, max_length=None)
    expected_output = TextField(required=False, max_length=None)
    accept_output = forms.BooleanField(required=False)
    update_existing = forms.BooleanField(required=False)

    def __init__(
        self,
        *args: Any,
        project: Any,
        describe: Callable[[dict[str, Any]], dict[str, Any] | None],
        posting: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.posting = posting
        self.describe = describe
        self.described: dict[str, Any] | None = None
        self.fields["dataset"].queryset = Dataset.objects.filter(project=project).order_by("name")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        source = self.source()
        if source:
            self.described = self.describe(source)
            if self.described is None and "queue_item_id" in source:
                self.add_error("item", "No such reviewed item in this project.")
            elif self.described is None and "span_id" in source:
                self.add_error("span", "No such span of that trace in this project.")
            elif self.described is None:
                self.add_error("trace", "No such trace in this project.")
        elif self.posting and not any(n in self.errors for n in ("trace", "span", "item")):
            self.add_error("trace", "Name a trace or a reviewed item.")
        if self.posting and data.get("dataset") is None and "dataset" not in self.errors:
            self.add_error("dataset", "Choose a dataset.")
        return data

    def source(self) -> dict[str, Any]:
        """The source named, as ``dataset_promote`` takes it ({}: none, or refused)."""
        if any(n in self.errors for n in ("trace", "span", "item")):
            return {}
        data = self.cleaned_data
        if data.get("item") is not None:
            return {"queue_item_id": data["item"]}
        if data.get("trace"):
            span = data.get("span")
            return {"trace_id": data["trace"]} | ({"span_id": span} if span else {})
        return {}

    def chosen(self) -> str:
        """The valid dataset's id, to keep it chosen on links ("": none)."""
        dataset = self.cleaned_data.get("dataset") if hasattr(self, "cleaned_data") else None
        return str(dataset.pk) if dataset is not None else ""


class PromoteMatchingForm(forms.Form):
    """The trace filter, the dataset, ``accept_output`` (each trace's output accepted as
    expected) and ``update_existing``. On a GET only the filter is read.

    The filter is the trace filter builder's condition rows (``cf``, ``ck``, ``co``,
    ``cv``: ``traces.filter_builder``) and ``filter``, a filter typed as in the trace
    explorer's address (its link here, and the advanced way); both must hold. ``rows``
    are the rows as given, each with its reason when it is not a condition; ``params()``
    is the filter object the API's ``trace_filter`` takes."""

    filter = TextField(
        required=False, max_length=8000, strip=False, validators=[storable_query], label="Filter"
    )
    dataset = forms.ModelChoiceField(
        queryset=None,
        required=False,
        error_messages={"invalid_choice": "Choose a dataset of this project."},
    )
    accept_output = forms.BooleanField(required=False)
    update_existing = forms.BooleanField(required=False)

    def __init__(
        self,
        *args: Any,
        project: Any,
        posting: bool = False,
        builder: filter_builder.Context | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.posting = posting
        self.fields["dataset"].queryset = Dataset.objects.filter(project=project).order_by("name")
        self.builder = builder or filter_builder.Context()
        data = self.data
        self.rows = filter_builder.rows_from_query(data) if hasattr(data, "getlist") else []
        self.row_params = filter_builder.params_from_conditions(self.rows, self.builder)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.posting and data.get("dataset") is None and "dataset" not in self.errors:
            self.add_error("dataset", "Choose a dataset.")
        if any(row.errors for row in self.rows):
            self.add_error(None, "A condition is not complete; see its reason.")
        return data

    def typed_params(self) -> dict[str, list[str]]:
        """The typed filter's parameters ({} when the field itself was refused)."""
        from traces.views import filter_params_from

        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        return filter_params_from(QueryDict(self.cleaned_data.get("filter") or ""))

    def filter_refused(self) -> bool:
        """The typed filter or a row is not a filter: nothing is counted or promoted."""
        self.typed_params()
        return "filter" in self.errors or any(row.errors for row in self.rows)

    def params(self) -> dict[str, list[str]]:
        """The filter: the rows' conditions and the typed filter's together."""
        return filter_builder.merged_params(self.row_params, self.typed_params())


IMPORT_FORMATS = [("", "From the file name"), ("jsonl", "JSON Lines"), ("csv", "CSV")]


class ImportForm(forms.Form):
    """A JSONL or CSV file (the format named, or read from the file's name) and
    ``atomic``: all or nothing."""

    file = forms.FileField(
        max_length=KEY_LENGTH,
        error_messages={"required": "Choose a file.", "empty": "The file is empty."},
    )
    format = forms.ChoiceField(choices=IMPORT_FORMATS, required=False)
    atomic = forms.BooleanField(required=False)

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        problem = unstorable(upload.name or "")
        if problem:
            raise ValidationError(f"The file's name: {problem}")
        return upload

    def file_format(self) -> str:
        chosen = self.cleaned_data["format"]
        if chosen:
            return chosen
        return "csv" if self.cleaned_data["file"].name.lower().endswith(".csv") else "jsonl"


class ExportForm(forms.Form):
    """A version of the dataset (default: the newest) and a format."""

    version = numbers_field("Version")
    format = forms.ChoiceField(
        choices=ExportFormat.choices,
        error_messages={"required": "Choose a format.", "invalid_choice": "Choose a format."},
    )

    def __init__(self, *args: Any, numbers: Iterable[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = version_choices(numbers)


class ResultsPageForm(forms.Form):
    """``?after=<key>`` of an experiment's results."""

    after = TextField(required=False, max_length=KEY_LENGTH, strip=False, label="Page")


class CompareForm(forms.Form):
    """``?baseline=<id>``: another experiment of the project to compare with; ``show``
    which items (changed by default, regressions only, ...), ``after`` the page."""

    baseline = forms.ModelChoiceField(
        queryset=None,
        label="Compare with",
        error_messages={
            "required": "Choose an experiment to compare with.",
            "invalid_choice": "Choose an experiment of this project.",
        },
    )

    show = forms.ChoiceField(
        required=False,
        label="Show",
        choices=[
            ("changed", "Changed (regressed or improved)"),
            ("regressed", "Regressions only"),
            ("improved", "Improvements only"),
            ("unchanged", "Unchanged"),
            ("all", "Every item"),
        ],
        error_messages={"invalid_choice": "Choose one of the kinds offered."},
    )
    after = TextField(required=False, max_length=KEY_LENGTH, strip=False, label="Page")

    def __init__(self, *args: Any, experiments: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["baseline"].queryset = experiments

    def clean_show(self) -> str:
        return self.cleaned_data.get("show") or "changed"


def unshown_error_lines(form: forms.BaseForm, shown: Iterable[str] = ()) -> list[str]:
    """The form's errors a page states above it: its own, and those of fields with no
    input beside which to show them (sent in a link or a hidden input, or not on the
    page); the fields in ``shown`` have theirs beside the input."""
    lines = [str(e) for e in form.non_field_errors()]
    for name, errors in form.errors.items():
        if name == forms.forms.NON_FIELD_ERRORS or name in shown:
            continue
        field = form.fields.get(name)
        label = str(field.label) if field is not None and field.label else name.replace("_", " ")
        lines.extend(f"{label.capitalize()}: {e}" for e in errors)
    return lines
