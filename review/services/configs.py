"""Score configs: create, edit (each edit freezes a new version) and archive."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, conflict_on_duplicate
from projects.models import Project
from review.models import (
    ScoreConfig,
    ScoreConfigVersion,
    ScoreTarget,
)
from review.services.common import is_number, time_now
from traces.models import ScoreDataType
from traces.score_kinds import score_kind

CONFIG_DEFINITION_FIELDS = (
    "name",
    "description",
    "data_type",
    "target",
    "min_value",
    "max_value",
    "step",
    "options",
    "ordered",
    "rubric",
    "required",
    "writes_expected_output",
)


def _validate_rubric(rubric: Any) -> list[dict[str, Any]]:
    if not isinstance(rubric, list) or not rubric:
        raise DomainError(
            "A rubric needs at least one level, each with a definition and an example.",
            details={"rubric": ["A rubric with no levels is refused."]},
        )
    levels: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for index, level in enumerate(rubric):
        problems = []
        if not isinstance(level, dict):
            errors[f"rubric[{index}]"] = ["Each level is an object."]
            continue
        unknown = set(level) - {"label", "definition", "examples"}
        if unknown:
            problems.append(f"Unknown keys: {', '.join(sorted(unknown))}.")
        label = level.get("label")
        definition = level.get("definition")
        examples = level.get("examples")
        if not isinstance(label, str) or not label.strip():
            problems.append("A level needs a label.")
        if not isinstance(definition, str) or not definition.strip():
            problems.append("A level needs a definition.")
        if (
            not isinstance(examples, list)
            or not examples
            or not all(isinstance(e, str) and e.strip() for e in examples)
        ):
            problems.append("A level needs at least one example (a non-empty string).")
        # rubric rows: levels are told apart by label (answers, the version diff).
        if isinstance(label, str) and label.strip().casefold() in {
            level["label"].casefold() for level in levels
        }:
            problems.append(f"Another level is labelled “{label.strip()}”: give each its own.")
        if problems:
            errors[f"rubric[{index}]"] = problems
        else:
            levels.append(
                {"label": label.strip(), "definition": definition.strip(), "examples": examples}
            )
    if errors:
        raise DomainError("The rubric is incomplete.", details=errors)
    return levels


def _validate_config_definition(data: dict[str, Any]) -> dict[str, Any]:
    """Checks a whole config definition; returns it normalized."""
    errors: dict[str, list[str]] = {}
    data_type = data["data_type"]
    kind = score_kind(data_type) if data_type in ScoreDataType.values else None
    if kind is None:
        errors["data_type"] = [f"One of {', '.join(ScoreDataType.values)}."]
    if data.get("target", ScoreTarget.TRACE) not in ScoreTarget.values:
        errors["target"] = [f"One of {', '.join(ScoreTarget.values)}."]
    # An unknown data type is refused above and takes neither bounds nor options.
    if kind is not None and kind.numeric:
        low, high, step = data.get("min_value"), data.get("max_value"), data.get("step")
        if not is_number(low) or not is_number(high):
            errors["min_value"] = ["A numeric config needs min_value and max_value."]
        elif low >= high:
            errors["max_value"] = ["max_value must be greater than min_value."]
        elif step is not None and (not is_number(step) or step <= 0 or step > high - low):
            errors["step"] = ["step must be positive and no larger than the range."]
    else:
        data["min_value"] = data["max_value"] = data["step"] = None
    if kind is not None and kind.has_options:
        options = data.get("options")
        if not isinstance(options, list) or len(options) < 2:
            errors["options"] = ["A categorical config needs at least two options."]
        else:
            labels = []
            for option in options:
                if (
                    not isinstance(option, dict)
                    or set(option) != {"label", "value"}
                    or not isinstance(option["label"], str)
                    or not option["label"].strip()
                    or not is_number(option["value"])
                ):
                    errors["options"] = [
                        'Each option is {"label": non-empty text, "value": a number}.'
                    ]
                    break
                labels.append(option["label"])
            if "options" not in errors and len(set(labels)) != len(labels):
                errors["options"] = ["Option labels must be unique."]
            values = [o["value"] for o in options if isinstance(o, dict)]
            if data.get("ordered") and "options" not in errors and len(set(values)) != len(values):
                errors["ordered"] = ["Ordered options need distinct values: their order."]
        data["ordered"] = bool(data.get("ordered"))
    else:
        data["options"] = []
        data["ordered"] = False
    if data.get("writes_expected_output") and not (kind is not None and kind.labelled):
        errors["writes_expected_output"] = [
            "Only a categorical or text config can write to the expected output."
        ]
    if errors:
        raise DomainError("Invalid score config.", details=errors)
    data["rubric"] = _validate_rubric(data.get("rubric"))
    return data


def _config_snapshot(config: ScoreConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in CONFIG_DEFINITION_FIELDS}


def _freeze_version(config: ScoreConfig, actor: Actor) -> None:
    ScoreConfigVersion.objects.create(
        organization_id=config.organization_id,
        config=config,
        version=config.version,
        snapshot=_config_snapshot(config),
        created_by=actor.user,
    )


def score_config_create(*, actor: Actor, project: Project, **fields: Any) -> ScoreConfig:
    data = _validate_config_definition(dict(fields))
    with conflict_on_duplicate(), audit.acting_as(actor), transaction.atomic():
        if ScoreConfig.objects.filter(project=project, name=data["name"]).exists():
            raise Conflict(
                f"A score config named '{data['name']}' exists.", details={"name": ["taken"]}
            )
        config = ScoreConfig.objects.create(project=project, created_by=actor.user, **data)
        _freeze_version(config, actor)
    return config


def score_config_update(*, actor: Actor, config: ScoreConfig, **changes: Any) -> ScoreConfig:
    """Edits make a new version; annotations keep pointing at the version they answered."""
    with conflict_on_duplicate(), audit.acting_as(actor), transaction.atomic():
        config = ScoreConfig.objects.select_for_update().get(pk=config.pk)
        if config.archived_at:
            raise Conflict("This score config is archived.", code="archived")
        current = _config_snapshot(config)
        merged = _validate_config_definition({**current, **changes})
        if merged == current:
            return config
        if (
            merged["name"] != config.name
            and ScoreConfig.objects.filter(project_id=config.project_id, name=merged["name"])
            .exclude(pk=config.pk)
            .exists()
        ):
            raise Conflict(
                f"A score config named '{merged['name']}' exists.", details={"name": ["taken"]}
            )
        for name, value in merged.items():
            setattr(config, name, value)
        config.version += 1
        config.updated_at = time_now()
        config.save()
        _freeze_version(config, actor)
    return config


def score_config_archive(*, actor: Actor, config: ScoreConfig) -> ScoreConfig:
    """Archived configs leave new forms but keep every answer that used them."""
    with audit.acting_as(actor), transaction.atomic():
        config = ScoreConfig.objects.select_for_update().get(pk=config.pk)
        if config.archived_at is None:
            config.archived_at = time_now()
            config.save()
    return config
