"""The rubric page's form: a question's definition (name, kind of answer, bounds,
options, levels with definitions and examples) and, for a categorical question, its
scale: unordered categories (nominal) or ordered levels (ordinal). Agreement reads the
scale (``review.quality.selectors.agreement.scale_of``): never inferred from the
options' values.

The form types and bounds the input; ``review.services.configs`` decides what a valid
rubric is, and its refusals come back beside the fields.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from hitl.forms import TextField
from review.models import ScoreTarget
from review.pages.lead_forms import archive_field
from review.quality.forms import FiniteFloatField
from traces.models import ScoreDataType
from traces.score_kinds import score_kind

NOMINAL = "nominal"
ORDINAL = "ordinal"


class RubricScaleForm(forms.Form):
    """``scale``: nominal or ordinal. Left out of a post, the question keeps its scale
    (a new one is nominal); only categorical questions use it."""

    scale = forms.ChoiceField(
        label="Are the options ordered?",
        choices=[
            (NOMINAL, "Unordered categories (nominal): any two different answers disagree"),
            (
                ORDINAL,
                "Ordered levels (ordinal), in the order of their values: near answers nearly agree",
            ),
        ],
        required=False,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose unordered categories or ordered levels."},
    )

    def ordered(self) -> bool | None:
        """The choice as the config's ``ordered`` (None: not posted, keep it)."""
        scale = self.cleaned_data.get("scale")
        return None if not scale else scale == ORDINAL


def takes_options(data_type: Any) -> bool:
    """Whether a question of ``data_type`` is answered with one of its options (its
    score kind says: categorical), so the page shows the options and their scale. An
    unknown type (a refused post) counts as taking them: nothing typed is hidden."""
    if data_type not in ScoreDataType.values:
        return True
    return score_kind(data_type).has_options


def takes_numbers(data_type: Any) -> bool:
    """Whether a question of ``data_type`` is answered with a number (its score kind
    says: numeric), so the page shows its lowest, highest and step. An unknown type (a
    refused post) counts as taking them: nothing typed is hidden."""
    if data_type not in ScoreDataType.values:
        return True
    return score_kind(data_type).numeric


def scale_of_data(data: dict[str, Any]) -> str:
    """The scale a config definition (or a refused post) shows."""
    return ORDINAL if data.get("ordered") else NOMINAL


LEVEL_PARTS = ("label", "definition", "examples")
# Level rows a rubric form reads at most (the page offers the saved ones and two blank).
MAX_LEVELS = 100
# A level or option row's button (rubric rows): add a row, or remove or move row <n>;
# an option row's action starts with "option-".
ROW_ACTION = r"\A(option-)?(add|remove-\d{1,3}|up-\d{1,3}|down-\d{1,3})\Z"
OPTION = "option-"
BLANK_LEVEL: dict[str, Any] = {"label": "", "definition": "", "examples": []}
BLANK_OPTION: dict[str, Any] = {"label": "", "value": ""}
# A question's numbers (its scale for a kind that takes numbers: ``takes_numbers``).
NUMBER_FIELDS = ("min_value", "max_value", "step")


def apply_row_action(
    levels: list[dict[str, Any]], action: str, blank: dict[str, Any] = BLANK_LEVEL
) -> list[dict[str, Any]]:
    """``levels`` (or options) after a row's button (rubric rows): ``add`` appends
    ``blank``, ``remove-<n>`` drops row n, ``up-<n>``/``down-<n>`` swap it with its
    neighbour; a row number past the rows changes nothing."""
    levels = [dict(level) for level in levels]
    if action == "add":
        if len(levels) < MAX_LEVELS:
            levels.append(dict(blank))
        return levels
    verb, _, number = action.partition("-")
    index = int(number)
    other = {"up": index - 1, "down": index + 1}.get(verb)
    if index >= len(levels):
        return levels
    if verb == "remove":
        del levels[index]
    elif other is not None and 0 <= other < len(levels):
        levels[index], levels[other] = levels[other], levels[index]
    return levels


class OptionsField(TextField):
    """Categories one a line as ``label = number``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=None, required=False, **kwargs)

    def clean(self, value: Any) -> list[dict[str, Any]]:  # type: ignore[override]
        raw = super().clean(value)
        options, wrong = [], []
        for line in raw.splitlines():
            if not line.strip():
                continue
            label, sep, number = line.rpartition("=")
            try:
                parsed = float(number) if sep else None
            except ValueError:
                parsed = None
            if parsed is None or parsed != parsed or parsed in (float("inf"), float("-inf")):
                wrong.append(f"“{line.strip()}”: write label = number, e.g. Correct = 1.")
                continue
            options.append({"label": label.strip(), "value": parsed})
        if wrong:
            raise ValidationError(wrong)
        return options


class RubricForm(RubricScaleForm):
    """A question's definition as ``score_config_create``/``update`` take it, with the
    levels posted as ``level-<n>-label``, ``-definition`` and ``-examples`` (one a line)
    and the options as ``option-<n>-label`` and ``-value`` (or as lines in ``options``);
    a row left empty is dropped."""

    name = TextField(label="Question", required=False)
    description = TextField(label="Description", max_length=None, required=False)
    data_type = forms.ChoiceField(
        label="Kind of answer",
        choices=ScoreDataType.choices,
        error_messages={
            "required": "Choose the kind of answer.",
            "invalid_choice": "Choose one of the kinds of answer.",
        },
    )
    target = forms.ChoiceField(
        label="Asked about",
        choices=ScoreTarget.choices,
        required=False,
        error_messages={"invalid_choice": "Choose what the question is asked about."},
    )
    min_value = FiniteFloatField(label="Lowest", required=False)
    max_value = FiniteFloatField(label="Highest", required=False)
    step = FiniteFloatField(label="Step", required=False)
    options = OptionsField(label="Options")
    required = forms.BooleanField(required=False)
    writes_expected_output = forms.BooleanField(required=False)
    archive = archive_field()
    # rubric rows: a level row's button; the page is shown again with the rows changed.
    rows = forms.RegexField(
        ROW_ACTION,
        required=False,
        error_messages={"invalid": "Add a level, or remove or move one of the rows shown."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        index = 0
        while self.is_bound and f"level-{index}-label" in self.data and index < MAX_LEVELS:
            self.fields[f"level-{index}-label"] = TextField(
                label=f"Level {index + 1} label", required=False
            )
            self.fields[f"level-{index}-definition"] = TextField(
                label=f"Level {index + 1} definition", max_length=None, required=False
            )
            self.fields[f"level-{index}-examples"] = TextField(
                label=f"Level {index + 1} examples", max_length=None, required=False
            )
            index += 1
        self.level_count = index
        index = 0
        while self.is_bound and f"option-{index}-label" in self.data and index < MAX_LEVELS:
            self.fields[f"option-{index}-label"] = TextField(
                label=f"Option {index + 1} label", required=False
            )
            self.fields[f"option-{index}-value"] = FiniteFloatField(
                label=f"Option {index + 1} value", required=False
            )
            index += 1
        # Options come from their rows when posted, else from ``options`` (lines).
        self.option_count = index
        # The posted row of each level the definition keeps (rubric rows).
        self.kept_rows: list[int] = []

    def clean(self) -> dict[str, Any]:
        """Options posted as rows (rubric rows): each kept row needs a label and a value,
        a label of its own, and (ordered levels) a value of its own; the reasons go
        beside the row. A kind of answer without options neither reads nor refuses its
        option rows, nor one without numbers its lowest, highest and step: the page
        hides them (:func:`takes_options`, :func:`takes_numbers`), keeping what they
        hold for a change back. A refused kind (absent here) hides nothing."""
        data = super().clean()
        data_type = data.get("data_type")
        if not takes_numbers(data_type):
            for name in NUMBER_FIELDS:
                self.errors.pop(name, None)
                data[name] = None
        if not takes_options(data_type):
            for name in [n for n in self.errors if n.startswith(OPTION)]:
                del self.errors[name]
            return data
        if not self.option_count:
            return data
        options, labels, values = [], set(), set()
        ordinal = data.get("scale") == ORDINAL
        for i in range(self.option_count):
            label_name, value_name = f"option-{i}-label", f"option-{i}-value"
            if label_name not in data or value_name not in data:
                continue  # refused by its field, beside the row
            label, value = data[label_name], data[value_name]
            if not label and value is None:
                continue
            if not label or value is None:
                self.add_error(label_name, "An option needs a label and a value.")
            elif label.casefold() in labels:
                self.add_error(label_name, f"Another option is labelled “{label}”.")
            elif ordinal and value in values:
                self.add_error(value_name, f"Another option has the value {value:g}.")
            else:
                options.append({"label": label, "value": value})
            labels.add(label.casefold())
            values.add(value)
        data["options"] = options
        return data

    def option_rows(self) -> list[dict[str, Any]]:
        """The option rows as posted, each with its reasons (rubric rows)."""
        return [
            {
                "label": str(self.data.get(f"option-{i}-label", "")),
                "value": str(self.data.get(f"option-{i}-value", "")),
                "errors": [e for k in ("label", "value") for e in self[f"option-{i}-{k}"].errors],
            }
            for i in range(self.option_count)
        ]

    def row_action(self) -> str:
        """The level row button pressed (rubric rows), or "" for a save."""
        return "" if self.errors.get("rows") else self.cleaned_data.get("rows") or ""

    def level_names(self) -> dict[str, str]:
        """The service's name of each kept level (``rubric[<k>]``) -> its row's label
        field, so that a refusal shows beside the row (rubric rows)."""
        return {f"rubric[{k}]": f"level-{row}-label" for k, row in enumerate(self.kept_rows)}

    def definition(self) -> dict[str, Any]:
        """The question as the services take it (``ordered`` only when posted)."""
        data = self.cleaned_data
        definition: dict[str, Any] = {
            name: data[name]
            for name in (
                "name",
                "description",
                "data_type",
                "required",
                "writes_expected_output",
                "min_value",
                "max_value",
                "step",
                "options",
            )
        }
        definition["target"] = data["target"] or ScoreTarget.TRACE
        levels = []
        self.kept_rows = []
        for i in range(self.level_count):
            label = data[f"level-{i}-label"]
            text = data[f"level-{i}-definition"]
            examples = [e.strip() for e in data[f"level-{i}-examples"].splitlines() if e.strip()]
            if label or text or examples:
                levels.append({"label": label, "definition": text, "examples": examples})
                self.kept_rows.append(i)
        definition["rubric"] = levels
        ordered = self.ordered()
        if ordered is not None:
            definition["ordered"] = ordered
        return definition

    def shown(self, *, keep_blank: bool = False) -> dict[str, Any]:
        """What was posted, as the page shows a definition (typed text kept as typed);
        ``keep_blank`` keeps the blank rows at the end (rubric rows: a row's button)."""
        raw = self.data
        levels = []
        for i in range(self.level_count):
            # Every posted row, in place, so that each keeps its reasons beside it.
            row = {k: str(raw.get(f"level-{i}-{k}", "")) for k in ("label", "definition")}
            examples = str(raw.get(f"level-{i}-examples", ""))
            errors = [e for k in LEVEL_PARTS for e in self[f"level-{i}-{k}"].errors]
            levels.append({**row, "examples": examples.splitlines(), "errors": errors})
        blank = lambda level: not any(level[k] for k in (*LEVEL_PARTS, "errors"))  # noqa: E731
        while not keep_blank and levels and blank(levels[-1]):
            levels.pop()  # the blank rows at the end: the page offers its own
        options = self.option_rows()
        while not keep_blank and options and not any(options[-1].values()):
            options.pop()  # the blank rows at the end: the page offers its own
        shown: dict[str, Any] = {
            name: raw.get(name, "")
            for name in ("name", "description", "data_type", "target", "min_value")
        }
        shown |= {"max_value": raw.get("max_value", ""), "step": raw.get("step", "")}
        shown |= {
            "required": bool(self["required"].value()),
            "writes_expected_output": bool(self["writes_expected_output"].value()),
            "options_text": raw.get("options", ""),
            "option_rows": options,
            "rubric": levels,
        }
        scale = raw.get("scale")
        if scale in (NOMINAL, ORDINAL):
            shown["ordered"] = scale == ORDINAL
        return shown
