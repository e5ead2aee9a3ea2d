"""What the lead's pages read from a request: a queue's settings, form and pool, the
board's change of priority or assignee, a routing rule (and its preview's query), a
rule switched on, off or deleted, and adding what a trace filter matches to a queue.

Every field is typed and bounded here (``hitl.forms``: storable text, numbers within
what the columns hold, choices among the known ones, ids among the project's rows);
the services (``review.services``) decide the rules and the views put their refusals
beside the fields (``hitl.forms.form_add_domain_error``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from hitl import text
from hitl.exceptions import DomainError
from hitl.forms import TextField, WholeNumberField
from review.models import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    AssignmentStrategy,
    ClaimOrder,
    ReviewQueue,
    RoutingSignal,
    RoutingStrategy,
    RoutingTarget,
    ScoreConfig,
    SuggestionMode,
)
from review.quality.forms import FiniteFloatField
from review.services.items import SELECTABLE_COLUMNS
from review.services.suggestions import BLIND_REFUSED
from review.services.thread_routing import thread_conditions_check
from traces import filter_builder
from traces.score_kinds import score_kind

INT32_MAX = 2**31 - 1
# Longest trace filter (a query string) a form takes.
FILTER_MAX = 4000


def archive_field() -> forms.ChoiceField:
    """The archive button of a rubric or queue page: ``archive=1``, or left out."""
    return forms.ChoiceField(
        label="Archive",
        choices=[("1", "Archive")],
        required=False,
        error_messages={"invalid_choice": "The archive button sends 1."},
    )


class ArchiveForm(forms.Form):
    """The archive button alone; its page's form refuses any other value beside it.
    Archiving cannot be undone, so it is acted on only with ``confirm`` (ticked by the
    button's dialog or by the page that asks first)."""

    archive = archive_field()
    confirm = forms.BooleanField(required=False)

    def asked(self) -> bool:
        return self.is_valid() and self.cleaned_data["archive"] == "1"

    def confirmed(self) -> bool:
        return self.asked() and self.cleaned_data["confirm"]


def trace_filter(query: str) -> dict[str, list[str]]:
    """A trace filter typed as in the explorer's address, as its parameters."""
    from traces.views import filter_params_from

    return filter_params_from(QueryDict(query.lstrip("?")))


def read_condition_rows(form: forms.Form, builder: filter_builder.Context | None) -> None:
    """The builder's rows a form was given (``form.rows``, each with its reason when it
    is not a condition) and the filter parameters they spell (``form.row_params``)."""
    form.builder = builder or filter_builder.Context()  # type: ignore[attr-defined]
    data = form.data
    rows = filter_builder.rows_from_query(data) if hasattr(data, "getlist") else []
    form.rows = rows  # type: ignore[attr-defined]
    form.row_params = filter_builder.params_from_conditions(rows, form.builder)  # type: ignore[attr-defined]


def refuse_incomplete_rows(form: forms.Form) -> None:
    """A row that is not a condition refuses the form (its reason is beside the row)."""
    if any(row.errors for row in getattr(form, "rows", [])):
        form.add_error(None, "A condition is not complete; see its reason.")


class FilterForm(forms.Form):
    """A trace filter: the builder's condition rows (``cf``, ``ck``, ``co``, ``cv``, see
    ``traces.filter_builder``) and ``?filter=``, a filter typed as in the explorer's
    address (the advanced way, and the explorer's links); both must hold. ``rows`` are
    the rows as posted, each with its reason when it is not a condition."""

    filter = TextField(label="Trace filter", max_length=FILTER_MAX, required=False)

    def __init__(
        self, *args: Any, builder: filter_builder.Context | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        read_condition_rows(self, builder)

    def typed_params(self) -> dict[str, list[str]]:
        """The typed filter's parameters ({} when the field itself was refused)."""
        self.is_valid()
        return trace_filter(self.cleaned_data.get("filter") or "")

    def params(self) -> dict[str, list[str]]:
        """The filter's parameters: the rows' and the typed filter's together."""
        return filter_builder.merged_params(self.row_params, self.typed_params())

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        refuse_incomplete_rows(self)
        return data


def _words(value: str) -> list[str]:
    return [w.strip() for w in value.replace(";", ",").split(",") if w.strip()]


class WordsField(TextField):
    """Comma-separated words (skills, languages), each at most ``word_length`` long."""

    def __init__(self, *, word_length: int, **kwargs: Any) -> None:
        self.word_length = word_length
        super().__init__(max_length=2000, required=False, **kwargs)

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        return _words(super().to_python(value))

    def validate(self, value: Any) -> None:
        if any(len(w) > self.word_length for w in value):
            raise ValidationError(f"At most {self.word_length} characters a word.")

    def run_validators(self, value: Any) -> None:
        for word in value:
            super().run_validators(word)


# --- queues -------------------------------------------------------------------------------


class QueueForm(forms.Form):
    """A queue's settings, the questions it asks (``q-<config id>`` ticked, with
    ``pos-``, ``adj-`` and ``tol-`` of the same id) and its pool (``m-<membership id>``
    ticked, with ``skills-``, ``langs-`` and ``senior-``). Only the project's live
    questions and the pool's candidates have fields: other ids are not read."""

    name = TextField(label="Name", error_messages={"required": "A queue needs a name."})
    description = TextField(label="Description", max_length=None, required=False)
    assignment_strategy = forms.ChoiceField(
        label="Assignment",
        choices=AssignmentStrategy.choices,
        required=False,
        error_messages={"invalid_choice": "Choose one of the strategies."},
    )
    claim_order = forms.ChoiceField(
        label="Order",
        choices=ClaimOrder.choices,
        required=False,
        error_messages={"invalid_choice": "Choose one of the orders."},
    )
    # The services say what a queue may hold (overlap 1 to 20, ...).
    overlap = WholeNumberField(label="Reviews per item", required=False)
    priority = WholeNumberField(
        label="Priority", required=False, min_value=PRIORITY_MIN, max_value=PRIORITY_MAX
    )
    lease_minutes = FiniteFloatField(
        label="Lease time (minutes)", required=False, min_value=0, max_value=INT32_MAX // 60
    )
    audit_percent = FiniteFloatField(
        label="Audit sample (%)", required=False, min_value=0, max_value=100
    )
    blind_mode = forms.BooleanField(required=False)
    include_explanation = forms.BooleanField(required=False)
    include_expected_output = forms.BooleanField(required=False)
    suggestion_mode = forms.ChoiceField(
        label="Judge suggestions",
        choices=SuggestionMode.choices,
        required=False,
        error_messages={"invalid_choice": "Choose off, after or before."},
    )
    suggestions_in_blind = forms.BooleanField(required=False)
    suggestion_holdout_percent = WholeNumberField(
        label="Items reviewed without suggestions (%)", required=False, min_value=0, max_value=100
    )
    archive = archive_field()

    def __init__(
        self,
        *args: Any,
        configs: Sequence[ScoreConfig],
        candidates: Sequence[Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.configs = list(configs)
        self.candidates = list(candidates)
        for config in self.configs:
            pk = config.pk
            numeric = score_kind(config.data_type).numeric
            self.fields[f"q-{pk}"] = forms.BooleanField(required=False, label=config.name)
            self.fields[f"pos-{pk}"] = FiniteFloatField(
                required=False, label=f"Order of {config.name}"
            )
            self.fields[f"adj-{pk}"] = forms.BooleanField(required=False)
            self.fields[f"tol-{pk}"] = FiniteFloatField(
                required=False,
                min_value=0,
                max_value=None if numeric else 100,
                label=f"{'Tolerated spread' if numeric else 'Tolerated dissent (%)'} "
                f"for {config.name}",
            )
        for membership in self.candidates:
            pk = membership.pk
            email = membership.user.email
            self.fields[f"m-{pk}"] = forms.BooleanField(required=False, label=email)
            self.fields[f"skills-{pk}"] = WordsField(word_length=64, label=f"Skills of {email}")
            self.fields[f"langs-{pk}"] = WordsField(word_length=16, label=f"Languages of {email}")
            self.fields[f"senior-{pk}"] = forms.BooleanField(required=False)

    @classmethod
    def initial_of(
        cls, settings_: dict[str, Any], entries: list[dict[str, Any]], pool: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """A saved queue (or a new one's defaults) as the form's initial values."""
        initial = {
            **settings_,
            "lease_minutes": f"{settings_.get('lease_ttl_seconds', 1800) / 60:g}",
            "audit_percent": f"{settings_.get('audit_sample_rate', 0.0) * 100:g}",
        }
        for position, entry in enumerate(entries, start=1):
            pk = entry["config_id"]
            initial[f"q-{pk}"] = True
            initial[f"pos-{pk}"] = position
            initial[f"adj-{pk}"] = entry.get("adjudicates", True)
            if entry.get("numeric_tolerance") is not None:
                initial[f"tol-{pk}"] = f"{entry['numeric_tolerance']:g}"
            elif entry.get("max_dissent_share") is not None:
                initial[f"tol-{pk}"] = f"{entry['max_dissent_share'] * 100:g}"
        for entry in pool:
            pk = entry["membership_id"]
            initial[f"m-{pk}"] = True
            initial[f"skills-{pk}"] = ", ".join(entry.get("skills") or [])
            initial[f"langs-{pk}"] = ", ".join(entry.get("languages") or [])
            initial[f"senior-{pk}"] = entry.get("is_senior", False)
        return initial

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        mode = data.get("suggestion_mode") or SuggestionMode.OFF
        blind_refused = not data.get("suggestions_in_blind")
        if data.get("blind_mode") and mode != SuggestionMode.OFF and blind_refused:
            self.add_error("suggestions_in_blind", BLIND_REFUSED)
        return data

    def settings(self) -> dict[str, Any]:
        """The queue's settings as ``queue_create``/``queue_update`` take them."""
        data = self.cleaned_data
        settings_: dict[str, Any] = {
            "name": data["name"],
            "description": data["description"],
            "assignment_strategy": data["assignment_strategy"] or AssignmentStrategy.PULL,
            "claim_order": data["claim_order"] or ClaimOrder.BREADTH_FIRST,
            "blind_mode": data["blind_mode"],
            "include_explanation": data["include_explanation"],
            "include_expected_output": data["include_expected_output"],
            "suggestion_mode": data["suggestion_mode"] or SuggestionMode.OFF,
            "suggestions_in_blind": data["suggestions_in_blind"],
        }
        for name in ("overlap", "priority", "suggestion_holdout_percent"):
            if data[name] is not None:
                settings_[name] = data[name]
        if data["lease_minutes"] is not None:
            settings_["lease_ttl_seconds"] = round(data["lease_minutes"] * 60)
        if data["audit_percent"] is not None:
            settings_["audit_sample_rate"] = data["audit_percent"] / 100
        return settings_

    def entries(self) -> list[dict[str, Any]]:
        """The questions ticked, in the order given (unordered ones last)."""
        data = self.cleaned_data
        form = []
        for config in self.configs:
            pk = config.pk
            if not data.get(f"q-{pk}"):
                continue
            entry: dict[str, Any] = {"config_id": pk, "adjudicates": data[f"adj-{pk}"]}
            tolerance = data[f"tol-{pk}"]
            if tolerance is not None:
                if score_kind(config.data_type).numeric:
                    entry["numeric_tolerance"] = tolerance
                else:
                    entry["max_dissent_share"] = tolerance / 100
            position = data[f"pos-{pk}"]
            form.append((999 if position is None else position, entry))
        return [entry for _position, entry in sorted(form, key=lambda pair: pair[0])]

    def pool(self) -> list[dict[str, Any]]:
        """The members ticked, with their skills, languages and seniority."""
        data = self.cleaned_data
        return [
            {
                "membership_id": m.pk,
                "skills": data[f"skills-{m.pk}"],
                "languages": data[f"langs-{m.pk}"],
                "is_senior": data[f"senior-{m.pk}"],
            }
            for m in self.candidates
            if data.get(f"m-{m.pk}")
        ]


# --- the board ----------------------------------------------------------------------------


class IdsField(forms.Field):
    """Ids posted repeatedly (``item_id=3&item_id=5``), each a whole number that a
    bigint holds."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"invalid": "an item is named by its number."}

    def to_python(self, value: Any) -> list[int]:
        values = value if isinstance(value, list | tuple) else ([value] if value else [])
        ids = []
        for raw in values:
            raw = str(raw).strip()
            if not raw.isascii() or not raw.isdigit() or int(raw) > text.INT64_MAX:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
            ids.append(int(raw))
        return ids


ASSIGNEE_KEEP = "keep"
ASSIGNEE_ANYONE = "anyone"


class BoardChangeForm(forms.Form):
    """A new priority and/or assignee for one card, the selection (``item_id``
    repeated) or a whole open column (``column``; the ids are then not read), and
    ``confirm`` for the column once its count was shown."""

    item_id = IdsField(label="Items", required=False)
    column = forms.ChoiceField(
        label="Column",
        choices=[(c, c) for c in SELECTABLE_COLUMNS],
        required=False,
        error_messages={
            "invalid_choice": "One of the open columns (pending, in progress, submitted)."
        },
    )
    # The service says which priorities an item takes.
    priority = WholeNumberField(
        label="Priority",
        required=False,
        error_messages={"invalid": "a whole number is expected."},
    )
    assignee = TextField(label="Assign to", max_length=40, required=False)
    confirm = forms.BooleanField(required=False)

    def __init__(self, *args: Any, pool: Iterable[int] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool_ids = set(pool)

    def clean_assignee(self) -> str:
        assignee = self.cleaned_data.get("assignee") or ASSIGNEE_KEEP
        if assignee in (ASSIGNEE_KEEP, ASSIGNEE_ANYONE):
            return assignee
        if assignee.isascii() and assignee.isdigit() and int(assignee) <= text.INT64_MAX:
            return assignee
        raise ValidationError("keep, back to the queue, or a reviewer of the pool.")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("column"):
            data["item_id"] = []
        if data.get("column") and not self.errors and not self.changes():
            raise ValidationError("Choose a new priority or whom to assign the selected items to.")
        return data

    def chosen_column(self) -> str | None:
        return self.cleaned_data.get("column") or None

    def item_ids(self) -> list[int]:
        return self.cleaned_data.get("item_id") or []

    def changes(self) -> dict[str, Any]:
        """The change as ``queue_items_update_each`` takes it."""
        data = self.cleaned_data
        changes: dict[str, Any] = {}
        if data.get("priority") is not None:
            changes["priority"] = data["priority"]
        assignee = data.get("assignee") or ASSIGNEE_KEEP
        if assignee == ASSIGNEE_ANYONE:
            changes["assignees"] = []
        elif assignee != ASSIGNEE_KEEP:
            changes["assignees"] = [int(assignee)]
        return changes

    def selected(self) -> set[int]:
        """The items posted that are named by a number (ticked again when refused)."""
        raw = self.data.getlist("item_id") if hasattr(self.data, "getlist") else []
        return {int(v) for v in raw if v.isascii() and v.isdigit() and int(v) <= text.INT64_MAX}

    def shown(self) -> dict[str, str]:
        """The change as typed, to show again."""
        return {
            "priority": str(self.data.get("priority", "")).strip(),
            "assignee": str(self.data.get("assignee", "")).strip() or ASSIGNEE_KEEP,
        }


# --- routing rules ------------------------------------------------------------------------

RULE_HINTS = {
    "signal": "What the rule is for; choosing one starts its condition below.",
    "filter": "As in the explorer's address, e.g. status=error&tags=billing; they hold"
    " together with the conditions above.",
    "sampling_percent": "Above 0, at most 100.",
    "daily_cap": "Empty: no cap.",
    "item_priority": "Higher is claimed first.",
    # Routing strategies (review.services.routing_strategies; docs/routing.md).
    "strategy": "How the rule picks among the traces the conditions match (none: all).",
    "score_name": "Uncertainty band: the judge's automated score.",
    "band_low": "Uncertainty band: its bottom (included), e.g. 0.4.",
    "band_high": "Uncertainty band: its top (included), e.g. 0.6.",
    "score_a": "Judges disagree: the first judge's score.",
    "score_b": "Judges disagree: the second judge's score.",
    "min_difference": "Judges disagree, numeric scores: the least difference; empty: any.",
    "source_queue": "Reviewers disagreed: in which queue (this queue's pool reviews again).",
    # Thread rules (review.services.thread_routing; docs/routing.md).
    "target": "Threads: whole conversations, when their turns meet the thread conditions.",
    "thread_min_turns": "Threads: at least this many turns; empty: any number.",
    "thread_idle_minutes": "Threads: the conversation ended, no new turn for this many"
    " minutes; empty: ended or not.",
}
# A service error's field, as the rule form names it.
RULE_FORM_NAME = {
    "filter_params": "filter",
    "sampling_rate": "sampling_percent",
    "source_queue_id": "source_queue",
}
# A thread condition's field in the rule form.
THREAD_FORM_NAME = {
    "thumbs_down": "thread_thumbs_down",
    "error": "thread_error",
    "min_turns": "thread_min_turns",
    "idle_minutes": "thread_idle_minutes",
}
THREAD_FIELDS = tuple(THREAD_FORM_NAME.values())
# A strategy parameter's field in the rule form.
STRATEGY_FORM_NAME = {"low": "band_low", "high": "band_high"}
STRATEGY_FIELDS = (
    "strategy", "score_name", "band_low", "band_high", "score_a", "score_b", "min_difference",
    "source_queue",
)  # fmt: skip


class RoutingRuleForm(forms.Form):
    """A routing rule as the create and edit forms (and the preview's query) give it.
    Without ``editing`` a rule is on; the edit form posts its "enabled" box."""

    name = TextField(label="Name", required=False)
    signal = forms.ChoiceField(
        label="Signal",
        choices=RoutingSignal.choices,
        required=False,
        error_messages={"invalid_choice": "Choose one of the signals."},
    )
    filter = TextField(
        label="More conditions, typed as a query string (advanced)",
        max_length=FILTER_MAX,
        required=False,
    )
    sampling_percent = FiniteFloatField(
        label="Sampling rate (%)",
        required=False,
        error_messages={"invalid": "A percentage is expected."},
    )
    daily_cap = WholeNumberField(
        label="Daily cap",
        required=False,
        min_value=0,
        max_value=INT32_MAX,
        error_messages={"invalid": "A whole number, or empty for no cap."},
    )
    item_priority = WholeNumberField(
        label="Item priority",
        required=False,
        min_value=PRIORITY_MIN,
        max_value=PRIORITY_MAX,
        error_messages={"invalid": "A whole number is expected."},
    )
    enabled = forms.BooleanField(label="On: new traces are routed by this rule", required=False)
    # Routing strategies: the numbers are read by the service, which says what is wrong.
    strategy = forms.ChoiceField(
        label="Strategy",
        choices=RoutingStrategy.choices,
        required=False,
        error_messages={"invalid_choice": "Choose one of the strategies."},
    )
    score_name = TextField(label="Score", max_length=256, required=False)
    band_low = TextField(label="Band from", max_length=64, required=False)
    band_high = TextField(label="Band to", max_length=64, required=False)
    score_a = TextField(label="First judge's score", max_length=256, required=False)
    score_b = TextField(label="Second judge's score", max_length=256, required=False)
    min_difference = TextField(label="Least difference", max_length=64, required=False)
    source_queue = WholeNumberField(
        label="Queue whose reviewers disagreed",
        required=False,
        min_value=1,
        max_value=text.INT64_MAX,
        error_messages={"invalid": "Choose one of the queues."},
    )
    # Thread rules: what the rule routes, and its conditions (the numbers' bounds are
    # the one check's, thread_conditions_check, run by clean()).
    target = forms.ChoiceField(
        label="Routes",
        choices=RoutingTarget.choices,
        required=False,
        error_messages={"invalid_choice": "Traces or threads."},
    )
    thread_thumbs_down = forms.BooleanField(label="A thumbs-down in any turn", required=False)
    thread_error = forms.BooleanField(label="An error in any turn", required=False)
    thread_min_turns = WholeNumberField(
        label="At least this many turns",
        required=False,
        error_messages={"invalid": "A whole number of turns, or empty."},
    )
    thread_idle_minutes = WholeNumberField(
        label="Ended: idle for at least (minutes)",
        required=False,
        error_messages={"invalid": "A whole number of minutes, or empty."},
    )
    # The preview of a saved rule: its id (its own draw).
    rule = WholeNumberField(required=False, min_value=1)

    def __init__(
        self,
        *args: Any,
        editing: bool = False,
        builder: filter_builder.Context | None = None,
        queues: Sequence[tuple[int, str]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        # The other queues of the project (id, name), for reviewers_disagree.
        self.queues = list(queues)
        if not editing:
            del self.fields["enabled"]
        read_condition_rows(self, builder)
        # The filter's reasons by parameter, as the service gave them (beside the rows).
        self.filter_errors: dict[str, list[str]] = {}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        refuse_incomplete_rows(self)
        if data.get("target") == RoutingTarget.THREAD:
            # The one check of thread conditions (the API's and the services' too).
            raw = {
                key: data.get(field)
                for key, field in THREAD_FORM_NAME.items()
                if field not in self.errors
            }
            try:
                data["thread_conditions"] = thread_conditions_check(raw)
            except DomainError as exc:
                self.add_thread_errors(exc.details)
        return data

    def add_thread_errors(self, details: Any) -> None:
        """A thread condition's reasons beside its field."""
        for key, why in (details if isinstance(details, dict) else {}).items():
            field = THREAD_FORM_NAME.get(key)
            self.add_error(field if field in self.fields else "target", _join(why))

    def thread_draft(self) -> dict[str, Any]:
        """The target and thread conditions as the rule services take them."""
        data = self.cleaned_data
        target = data.get("target") or RoutingTarget.TRACE
        conditions = data.get("thread_conditions", {}) if target == RoutingTarget.THREAD else {}
        return {"target": target, "thread_conditions": conditions}

    def filter_params(self) -> dict[str, list[str]]:
        """The rule's filter: the rows' conditions and the typed (advanced) filter's."""
        typed = trace_filter(self.cleaned_data.get("filter") or "")
        return filter_builder.merged_params(self.row_params, typed)

    def clean_sampling_percent(self) -> float:
        rate = self.cleaned_data.get("sampling_percent")
        if rate is None:
            return 100.0
        if not 0 < rate <= 100:
            raise ValidationError("Above 0 and at most 100 %.")
        return rate

    def draft(self) -> dict[str, Any]:
        """The rule as ``routing_rule_create``/``routing_rule_update`` take it."""
        data = self.cleaned_data
        rule: dict[str, Any] = {
            "name": data["name"],
            "signal": data["signal"] or RoutingSignal.OTHER,
            "enabled": data["enabled"] if self.editing else True,
            "filter_params": self.filter_params(),
            "sampling_rate": data["sampling_percent"] / 100,
            "daily_cap": data["daily_cap"],
        }
        if data["item_priority"] is not None:
            rule["item_priority"] = data["item_priority"]
        rule.update(self.strategy_draft())
        rule.update(self.thread_draft())
        if rule["target"] == RoutingTarget.THREAD:
            # The strategy's fields are a trace rule's (hidden for a thread rule).
            rule.update(
                strategy=RoutingStrategy.MATCH_AND_SAMPLE, strategy_params={}, source_queue_id=None
            )
        return rule

    def strategy_draft(self) -> dict[str, Any]:
        """The strategy's fields as the rule services take them (checked there)."""
        data = self.cleaned_data
        strategy = data.get("strategy") or RoutingStrategy.MATCH_AND_SAMPLE
        params: dict[str, Any] = {}
        if strategy == RoutingStrategy.UNCERTAINTY_BAND:
            params = {
                "score_name": data.get("score_name") or "",
                "low": data.get("band_low") or None,
                "high": data.get("band_high") or None,
            }
        elif strategy == RoutingStrategy.JUDGES_DISAGREE:
            params = {"score_a": data.get("score_a") or "", "score_b": data.get("score_b") or ""}
            if data.get("min_difference"):
                params["min_difference"] = data["min_difference"]
        source = data.get("source_queue")
        return {
            "strategy": strategy,
            "strategy_params": params,
            "source_queue_id": source if strategy == RoutingStrategy.REVIEWERS_DISAGREE else None,
        }

    def fields_shown(self) -> list[dict[str, Any]]:
        """The fields for ``_rule_form.html``: value as typed (or saved), reasons, choices."""
        defaults = {
            "signal": RoutingSignal.OTHER,
            "sampling_percent": "100",
            "item_priority": "0",
            "strategy": RoutingStrategy.MATCH_AND_SAMPLE,
            "target": RoutingTarget.TRACE,
        }
        shown = []
        for name in (
            "name", "target", *THREAD_FIELDS, "signal", "filter", *STRATEGY_FIELDS,
            "sampling_percent", "daily_cap", "item_priority",
        ):  # fmt: skip
            shown.append(self._shown(name, defaults.get(name, "")))
        if self.editing:
            shown.append(self._shown("enabled", ""))
        return shown

    def _shown(self, name: str, default: str) -> dict[str, Any]:
        field = self[name]
        kind = {
            "signal": "select",
            "strategy": "select",
            "source_queue": "select",
            "target": "select",
            "thread_thumbs_down": "checkbox",
            "thread_error": "checkbox",
            "thread_min_turns": "number",
            "thread_idle_minutes": "number",
            "enabled": "checkbox",
            "sampling_percent": "number",
            "daily_cap": "number",
            "item_priority": "number",
        }.get(name, "text")
        value = field.value()
        if kind == "checkbox":
            checked = bool(value)
            value = "on" if checked else ""
        else:
            checked = False
            value = default if value is None or (value == "" and not self.is_bound) else value
        return {
            "name": name,
            "id": f"rule-{name.replace('_', '-')}",
            "label": field.label,
            "kind": kind,
            "hint": RULE_HINTS.get(name, ""),
            "value": value,
            "checked": checked,
            "errors": list(field.errors),
            # Shown only for a rule of that target (static/js/rule_target.js).
            "group": "thread"
            if name in THREAD_FIELDS
            else ("trace" if name in STRATEGY_FIELDS else ""),
            "choices": {
                "signal": RoutingSignal.choices,
                "strategy": RoutingStrategy.choices,
                "target": RoutingTarget.choices,
                "source_queue": [("", "—"), *((str(pk), label) for pk, label in self.queues)],
            }.get(name, ()),
            "wide": name == "filter",
            "step": "any" if name == "sampling_percent" else "1",
        }

    def add_service_error(self, exc: DomainError) -> None:
        """A rule service's refusal beside the fields (a bad filter: each parameter's
        reason beside the filter); the message above them."""
        details = exc.details if isinstance(exc.details, dict) else {}
        placed = False
        for name, reasons in details.items():
            if name == "thread_conditions" and isinstance(reasons, dict):
                self.add_thread_errors(reasons)
                placed = True
                continue
            if name == "thread_conditions":
                # A thread rule without a condition: said beside the first of them.
                self.add_error("thread_thumbs_down", _join(reasons))
                placed = True
                continue
            if name == "strategy_params" and isinstance(reasons, dict):
                # A strategy parameter's reason beside its field.
                for inner, why in reasons.items():
                    inner_field = STRATEGY_FORM_NAME.get(inner, inner)
                    self.add_error(
                        inner_field if inner_field in self.fields else "strategy", _join(why)
                    )
                placed = True
                continue
            field = RULE_FORM_NAME.get(name, name)
            if field not in self.fields or field == "rule":
                continue
            if isinstance(reasons, dict):
                self.filter_errors = {k: [str(w) for w in _listed(v)] for k, v in reasons.items()}
                lines = [f"{inner}: {_join(why)}" for inner, why in reasons.items()]
            elif reasons == ["required"]:
                lines = [exc.message]
            else:
                lines = [_join(reasons)]
            for line in lines:
                self.add_error(field, line)
            placed = True
        if not placed:
            self.add_error(None, exc.message)


def _listed(reasons: Any) -> list[Any]:
    return list(reasons) if isinstance(reasons, list | tuple) else [reasons]


def _join(reasons: Any) -> str:
    return ", ".join(str(r) for r in reasons) if isinstance(reasons, list | tuple) else str(reasons)


class RoutingRuleChangeForm(forms.Form):
    """A rule switched on or off (``enabled``), or deleted (``delete=1``; acted on only
    with ``confirm``, ticked by the button's dialog or the page that asks first)."""

    delete = forms.BooleanField(required=False)
    enabled = forms.BooleanField(required=False)
    confirm = forms.BooleanField(required=False)


# --- adding what a filter matches ---------------------------------------------------------


class BulkAddForm(FilterForm):
    """The queue to add every trace the filter matches to: one of the project's
    (an archived one is refused by the service, with its reason)."""

    queue = forms.ModelChoiceField(
        label="Queue",
        queryset=ReviewQueue.objects.none(),
        error_messages={"required": "Choose a queue.", "invalid_choice": "Choose a queue."},
    )

    def __init__(self, *args: Any, project: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["queue"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = ReviewQueue.objects.filter(project=project)
