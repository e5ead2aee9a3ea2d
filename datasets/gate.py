"""The quality gate's verdict on an experiment: one check per threshold, with numbers.

Metric thresholds read the experiment's means (``min``/``max``) and their change from
a baseline experiment (``max_drop``/``max_rise``). Human thresholds read what the
experts said on the pinned version's items:

* judge alignment: over the items whose source trace (or span, or thread) has both the
  reviewers' answer to ``human_question`` (from the reviews snapshotted on the item:
  the adjudication's answer, else the reviewers' mean or most common answer) and the
  latest automated score named ``judge_score_name`` (LLM judge or code) on the same
  target, the share where they agree (numbers within ``alignment_tolerance``; labels
  equal);
* reviewer agreement: over the items with two or more reviewers' answers to a
  question, the share of reviewer pairs that gave the same answer (pairwise percent
  agreement, every question).

* expected outputs: items of the pinned version that wait for an expected output (a
  reviewed item nobody stated one for, ``datasets.models.needs_expected_output``) fail
  the gate by name: a metric that compares outputs with the expected one cannot have
  been met on them.

A check that cannot be computed (no baseline, no metric, no item with both a human and
a judge answer) is ``not_available``, and the gate does not pass: nothing was shown to
meet the threshold.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from datasets.models import Experiment, ExperimentStatus, QualityGate
from datasets.selectors import experiment_metrics, version_revisions
from datasets.services.promotion import reviewed_answer
from hitl.exceptions import Conflict, DomainError, NotFound
from review.comparison.report import candidate_preferred_or_tied
from traces.models import AUTOMATED_SCORE_SOURCES, Score, Span, Thread, Trace

PASS, FAIL, NOT_AVAILABLE = "pass", "fail", "not_available"


def _metric_means(experiment: Experiment) -> dict[str, float]:
    metrics = (experiment.summary or {}).get("metrics") or experiment_metrics(experiment)
    return {name: values["mean"] for name, values in metrics.items()}


def _check(kind: str, name: str, status: str, message: str, **numbers: Any) -> dict[str, Any]:
    return {"kind": kind, "metric": name, "status": status, "message": message, **numbers}


def _metric_checks(
    gate: QualityGate, experiment: Experiment, baseline: Experiment | None
) -> list[dict[str, Any]]:
    means = _metric_means(experiment)
    base_means = _metric_means(baseline) if baseline is not None else {}
    checks = []
    for threshold in gate.thresholds:
        name = threshold["metric"]
        value = means.get(name)
        for bound in ("min", "max"):
            if bound not in threshold:
                continue
            limit = threshold[bound]
            if value is None:
                checks.append(
                    _check(
                        "absolute",
                        name,
                        NOT_AVAILABLE,
                        f"no {name} score in the results",
                        threshold={bound: limit},
                        value=None,
                    )
                )
                continue
            ok = value >= limit if bound == "min" else value <= limit
            sign = ">=" if bound == "min" else "<="
            checks.append(
                _check(
                    "absolute",
                    name,
                    PASS if ok else FAIL,
                    f"{name} {value:.4g} {'meets' if ok else 'misses'} {sign} {limit:g}",
                    threshold={bound: limit},
                    value=value,
                )
            )
        for bound in ("max_drop", "max_rise"):
            if bound not in threshold:
                continue
            limit = threshold[bound]
            before = base_means.get(name)
            if baseline is None or before is None or value is None:
                why = "no baseline experiment" if baseline is None else f"no {name} to compare"
                checks.append(
                    _check(
                        "baseline",
                        name,
                        NOT_AVAILABLE,
                        why,
                        threshold={bound: limit},
                        value=value,
                        baseline_value=before,
                    )
                )
                continue
            delta = value - before
            ok = -delta <= limit if bound == "max_drop" else delta <= limit
            words = "drop" if bound == "max_drop" else "rise"
            checks.append(
                _check(
                    "baseline",
                    name,
                    PASS if ok else FAIL,
                    f"{name} {before:.4g} -> {value:.4g} ({delta:+.4g}); a {words} of at most "
                    f"{limit:g} is allowed",
                    threshold={bound: limit},
                    value=value,
                    baseline_value=before,
                    delta=delta,
                )
            )
    return checks


def _judge_value(record: dict[str, Any], project_id: int, score_name: str) -> Any:
    target: dict[str, Any] = {}
    if record.get("source_span_id"):
        span = Span.objects.filter(
            project_id=project_id,
            trace__external_id=record.get("source_trace_id"),
            external_id=record["source_span_id"],
        ).values_list("pk", flat=True)
        target["span_id__in"] = span
    elif record.get("source_trace_id"):
        trace = Trace.objects.filter(
            project_id=project_id, external_id=record["source_trace_id"]
        ).values_list("pk", flat=True)
        target.update({"trace_id__in": trace, "span__isnull": True})
    elif record.get("source_thread_id"):
        thread = Thread.objects.filter(
            project_id=project_id, external_id=record["source_thread_id"]
        ).values_list("pk", flat=True)
        target["thread_id__in"] = thread
    else:
        return None
    score = (
        Score.objects.filter(source__in=AUTOMATED_SCORE_SOURCES, name=score_name, **target)
        .order_by("-created_at", "-id")
        .values("value", "label")
        .first()
    )
    if score is None:
        return None
    return score["value"] if score["value"] is not None else score["label"]


def _agree(a: Any, b: Any, tolerance: float) -> bool:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    if numbers:
        return abs(float(a) - float(b)) <= tolerance
    return a == b


def _reviewed_records(experiment: Experiment):
    return (
        version_revisions(experiment.version)
        .exclude(content__reviews=[])
        .values_list("content", flat=True)
        .iterator(chunk_size=1000)
    )


def _alignment_check(gate: QualityGate, experiment: Experiment) -> dict[str, Any]:
    limit = gate.min_judge_alignment
    pairs = agreeing = 0
    for record in _reviewed_records(experiment):
        human = reviewed_answer(record.get("reviews") or [], gate.human_question)
        if human is None:
            continue
        judge = _judge_value(record, experiment.project_id, gate.judge_score_name)
        if judge is None:
            continue
        pairs += 1
        agreeing += _agree(human, judge, gate.alignment_tolerance)
    what = f"judge '{gate.judge_score_name}' vs reviewers' '{gate.human_question}'"
    if not pairs:
        return _check(
            "judge_alignment",
            what,
            NOT_AVAILABLE,
            f"no item of version {experiment.version.number} has both a reviewers' answer "
            f"to '{gate.human_question}' and a '{gate.judge_score_name}' judge score",
            threshold={"min": limit},
            value=None,
            items=0,
        )
    share = agreeing / pairs
    ok = share >= limit
    return _check(
        "judge_alignment",
        what,
        PASS if ok else FAIL,
        f"judge agrees with the reviewers on {agreeing} of {pairs} items ({share:.1%}); "
        f"at least {limit:.1%} required",
        threshold={"min": limit},
        value=share,
        items=pairs,
    )


def _reviewer_agreement_check(gate: QualityGate, experiment: Experiment) -> dict[str, Any]:
    limit = gate.min_reviewer_agreement
    pairs = same = 0
    for record in _reviewed_records(experiment):
        reviews = [r for r in record.get("reviews") or [] if not r.get("adjudication")]
        questions = {q for r in reviews for q in (r.get("answers") or {})}
        for question in questions:
            answers = [
                r["answers"][question]
                for r in reviews
                if r.get("answers", {}).get(question) is not None
            ]
            for a, b in combinations(answers, 2):
                pairs += 1
                same += a == b
    if not pairs:
        return _check(
            "reviewer_agreement",
            "reviewers",
            NOT_AVAILABLE,
            f"no item of version {experiment.version.number} has answers of two reviewers",
            threshold={"min": limit},
            value=None,
            pairs=0,
        )
    share = same / pairs
    ok = share >= limit
    return _check(
        "reviewer_agreement",
        "reviewers",
        PASS if ok else FAIL,
        f"reviewers agree on {same} of {pairs} answer pairs ({share:.1%}); at least "
        f"{limit:.1%} required",
        threshold={"min": limit},
        value=share,
        pairs=pairs,
    )


def _preference_checks(gate: QualityGate, experiment: Experiment) -> list[dict[str, Any]]:
    """Reviewers compared this experiment's outputs with others' in a comparison queue
    (``review.comparison``): the share of items where they preferred it or tied, whose
    lower confidence bound (Wilson) must reach the threshold."""
    checks = []
    for threshold in gate.thresholds:
        if "min_preferred_or_tied" not in threshold:
            continue
        limit = threshold["min_preferred_or_tied"]
        found = candidate_preferred_or_tied(
            project_id=experiment.project_id,
            queue_id=threshold["queue"],
            candidate_experiment_result_ids=experiment.results.values_list("pk", flat=True),
            criterion=threshold.get("criterion"),
            confidence=threshold.get("confidence", 0.95),
        )
        name = threshold["metric"]
        numbers = {
            "threshold": {"min_preferred_or_tied": limit},
            "value": found["share"],
            "lower_bound": found["lower_bound"],
            "items": found["items"],
        }
        if not found["items"]:
            checks.append(_check("preference", name, NOT_AVAILABLE, found["reason"], **numbers))
            continue
        ok = found["lower_bound"] >= limit
        checks.append(
            _check(
                "preference",
                name,
                PASS if ok else FAIL,
                f"preferred or tied on {found['preferred_or_tied']} of {found['items']} "
                f"items ({found['share']:.1%}, lower bound {found['lower_bound']:.1%}); "
                f"at least {limit:.1%} required",
                **numbers,
            )
        )
    return checks


def _expected_outputs_check(experiment: Experiment) -> dict[str, Any] | None:
    """A failing check when items of the version need an expected output; else None."""
    waiting = experiment.version.needs_expected_output
    if not waiting:
        return None
    return _check(
        "expected_outputs",
        "expected_output",
        FAIL,
        f"{waiting} item{'s' if waiting != 1 else ''} of version {experiment.version.number} "
        f"need{'s' if waiting == 1 else ''} an expected output (reviewed, and nobody stated "
        "one); give one on the item, then run the experiment on the new version",
        value=waiting,
        items=waiting,
    )


def gate_verdict(*, experiment: Experiment, baseline: Experiment | None = None) -> dict[str, Any]:
    """The verdict of the experiment's dataset gate. A running experiment has none yet
    (Conflict, 409); a dataset without a gate answers NotFound."""
    if experiment.status == ExperimentStatus.RUNNING:
        raise Conflict(
            "The experiment is still running; finish it before asking the gate.",
            code="experiment_running",
            details={"experiment": experiment.pk, "status": experiment.status},
        )
    gate = QualityGate.objects.filter(dataset_id=experiment.dataset_id).first()
    if gate is None:
        raise NotFound("This dataset has no quality gate.", code="no_gate")
    if baseline is None and gate.baseline_experiment_id:
        baseline = Experiment.objects.filter(pk=gate.baseline_experiment_id).first()
    if baseline is not None:
        if baseline.dataset_id != experiment.dataset_id:
            raise DomainError("The baseline is an experiment on the same dataset.")
        if baseline.pk == experiment.pk:
            baseline = None
    checks = _metric_checks(gate, experiment, baseline)
    if gate.min_judge_alignment is not None:
        checks.append(_alignment_check(gate, experiment))
    if gate.min_reviewer_agreement is not None:
        checks.append(_reviewer_agreement_check(gate, experiment))
    checks.extend(_preference_checks(gate, experiment))
    if (waiting := _expected_outputs_check(experiment)) is not None:
        checks.append(waiting)
    passed = bool(checks) and all(c["status"] == PASS for c in checks)
    return {
        "experiment": experiment.pk,
        "experiment_name": experiment.name,
        "dataset": experiment.dataset_id,
        "version": experiment.version.number,
        "baseline": baseline.pk if baseline is not None else None,
        "verdict": PASS if passed else FAIL,
        "passed": passed,
        "checks": checks,
        "needs_expected_output": experiment.version.needs_expected_output,
        "counts": {
            status: sum(1 for c in checks if c["status"] == status)
            for status in (PASS, FAIL, NOT_AVAILABLE)
        },
    }
