"""Reads for datasets: a version's items, diffs, experiment metrics and comparisons."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
from django.db import connection
from django.db.models import Q, QuerySet

from datasets.content import COLUMNS
from datasets.models import (
    Dataset,
    DatasetItem,
    DatasetItemRevision,
    DatasetVersion,
    Experiment,
    ExperimentResult,
)
from hitl.exceptions import DomainError, NotFound
from hitl.replica import replica_snapshot

DIFF_FIELDS = (*(c for c in COLUMNS if c != "id"), "reviews")
MAX_LISTED = 500


def item_live_record(item: DatasetItem) -> dict[str, Any]:
    """The item's live revision record (its sources' external ids live there), read once
    per item object."""
    cached = getattr(item, "_live_record", None)
    if cached is None:
        cached = (
            DatasetItemRevision.objects.filter(
                dataset_id=item.dataset_id, key=item.key, removed_in__isnull=True
            )
            .values_list("content", flat=True)
            .first()
            or {}
        )
        item._live_record = cached
    return cached


def version_get(*, dataset: Dataset, number: int) -> DatasetVersion:
    version = DatasetVersion.objects.filter(dataset=dataset, number=number).first()
    if version is None:
        raise NotFound(f"No version {number} of this dataset.", code="no_such_version")
    return version


def version_revisions(version: DatasetVersion) -> QuerySet[DatasetItemRevision]:
    """The revisions that make up ``version``: added at or before it, not yet
    removed at it."""
    return DatasetItemRevision.objects.filter(
        Q(removed_in__isnull=True) | Q(removed_in__gt=version.number),
        dataset_id=version.dataset_id,
        added_in__lte=version.number,
    )


def version_records_page(
    version: DatasetVersion, *, after: str = "", limit: int = 100
) -> tuple[list[dict[str, Any]], str | None]:
    """``limit`` of the version's records after the id ``after``, in id order, and the
    id to read the next page after (None on the last page)."""
    rows = list(
        version_revisions(version)
        .filter(key__gt=after)
        .order_by("key")
        .values_list("key", "content")[: limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return [content for _key, content in rows], rows[-1][0] if more else None


def version_records_raw(version: DatasetVersion, *, chunk_size: int = 5_000) -> Iterator[str]:
    """The version's records as JSON text in key order, streamed from a server-side
    cursor (memory stays flat however large the version)."""
    sql = """
        SELECT content::text FROM datasets_datasetitemrevision
        WHERE organization_id = %s AND dataset_id = %s AND added_in <= %s
          AND (removed_in IS NULL OR removed_in > %s)
        ORDER BY key
    """
    params = [version.organization_id, version.dataset_id, version.number, version.number]
    # From a caught-up read replica when there is one (hitl/replica.py), else the primary.
    with replica_snapshot() as database, database.cursor() as cursor:
        # A named cursor: PostgreSQL sends rows as they are fetched.
        raw = cursor.connection.cursor(name=f"dataset_export_{version.pk}")
        raw.itersize = chunk_size
        try:
            raw.execute(sql, params)
            while True:
                rows = raw.fetchmany(chunk_size)
                if not rows:
                    break
                for (text,) in rows:
                    yield text
        finally:
            raw.close()


# Export columns as PostgreSQL writes them (``version_table_batches``).
_JSON_EXPORT = frozenset(
    {"input", "expected_output", "expected_tool_calls", "metadata", "tags", "failure_modes",
     "annotation_ids"}
)  # fmt: skip
_INT_EXPORT = frozenset({"source_queue_item_id", "adjudication_id"})


def _export_column(name: str) -> str:
    if name in _JSON_EXPORT:
        # JSON text; a JSON null is no value, as a missing key.
        return f"NULLIF(content->'{name}', 'null'::jsonb)::text"
    if name in _INT_EXPORT:
        return f"(content->>'{name}')::bigint"
    return f"content->>'{name}'"


def version_table_batches(
    version: DatasetVersion, answers: list[str], *, chunk_size: int = 5_000
) -> Iterator[list[tuple[Any, ...]]]:
    """The version's items as the export's columns (``COLUMNS``, then one per entry of
    ``answers``), in key order, in batches of ``chunk_size`` rows from a server-side
    cursor. PostgreSQL produces every value, so no record is decoded in Python: JSON
    values and lists as JSON text (None for null), ids as integers, text as text,
    answers as JSON text."""
    expressions = [_export_column(name) for name in COLUMNS]
    expressions += ["NULLIF(content->'answers'->%s::text, 'null'::jsonb)::text" for _ in answers]
    sql = (
        f"SELECT {', '.join(expressions)} FROM datasets_datasetitemrevision "  # noqa: S608
        "WHERE organization_id = %s AND dataset_id = %s AND added_in <= %s "
        "AND (removed_in IS NULL OR removed_in > %s) ORDER BY key"
    )
    params = [
        *answers,
        version.organization_id,
        version.dataset_id,
        version.number,
        version.number,
    ]
    with replica_snapshot() as database, database.cursor() as cursor:
        # A named cursor: PostgreSQL sends rows as they are fetched; binary rows, so
        # psycopg reads numbers without parsing text.
        raw = cursor.connection.cursor(name=f"dataset_table_{version.pk}", binary=True)
        try:
            raw.execute(sql, params)
            while True:
                rows = raw.fetchmany(chunk_size)
                if not rows:
                    break
                yield rows
        finally:
            raw.close()


def version_answer_columns(version: DatasetVersion) -> list[str]:
    """Every "<reviewer>/<question>" answered in the version, sorted (one export column
    each)."""
    sql = """
        SELECT DISTINCT jsonb_object_keys(content->'answers') AS k
        FROM datasets_datasetitemrevision
        WHERE organization_id = %s AND dataset_id = %s AND added_in <= %s
          AND (removed_in IS NULL OR removed_in > %s)
          AND content->'answers' <> '{}'::jsonb
        ORDER BY k
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [version.organization_id, version.dataset_id, version.number, version.number]
        )
        return [row[0] for row in cursor.fetchall()]


# --- diff ---------------------------------------------------------------------------------


def version_diff(
    *, dataset: Dataset, from_number: int, to_number: int, limit: int = MAX_LISTED
) -> dict[str, Any]:
    """Items added, removed and changed (field by field) from one version to another.

    Only revisions that start or end between the two versions are read, so the cost
    follows the size of the change, not of the dataset."""
    older = version_get(dataset=dataset, number=min(from_number, to_number))
    newer = version_get(dataset=dataset, number=max(from_number, to_number))
    low, high = older.number, newer.number
    # Revisions live in `older` but not in `newer` (ended in (low, high]), and live in
    # `newer` but not in `older` (began in (low, high]).
    gone = (
        version_revisions(older)
        .filter(removed_in__gt=low, removed_in__lte=high)
        .values_list("key", "content_hash")
    )
    came = (
        version_revisions(newer)
        .filter(added_in__gt=low, added_in__lte=high)
        .values_list("key", "content_hash")
    )
    before = dict(gone.iterator(chunk_size=5000))
    after = dict(came.iterator(chunk_size=5000))
    removed_keys = sorted(before.keys() - after.keys())
    added_keys = sorted(after.keys() - before.keys())
    changed_keys = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    if from_number > to_number:  # asked backwards: swap the sense
        added_keys, removed_keys = removed_keys, added_keys
    listed = set(changed_keys[:limit])
    contents: dict[tuple[str, int], dict[str, Any]] = {}
    if listed:
        # The listed keys' revision ending between the versions (live in `older`) and
        # the one starting between them (live in `newer`): found through the
        # (dataset, key, added_in) index, never a scan of a version.
        ended = Q(added_in__lte=low, removed_in__gt=low, removed_in__lte=high)
        began = Q(added_in__gt=low, added_in__lte=high) & (
            Q(removed_in__isnull=True) | Q(removed_in__gt=high)
        )
        for key, content, added_in in (
            DatasetItemRevision.objects.filter(dataset=dataset, key__in=listed)
            .filter(ended | began)
            .values_list("key", "content", "added_in")
        ):
            contents[(key, 1 if added_in > low else 0)] = content
    changes = []
    for key in changed_keys[:limit]:
        old, new = contents.get((key, 0), {}), contents.get((key, 1), {})
        if from_number > to_number:
            old, new = new, old
        fields = {
            name: {"from": old.get(name), "to": new.get(name)}
            for name in DIFF_FIELDS
            if old.get(name) != new.get(name)
        }
        changes.append({"id": key, "fields": fields})
    return {
        "from": from_number,
        "to": to_number,
        "counts": {
            "added": len(added_keys),
            "removed": len(removed_keys),
            "changed": len(changed_keys),
        },
        "added": added_keys[:limit],
        "removed": removed_keys[:limit],
        "changed": changes,
        "truncated": max(len(added_keys), len(removed_keys), len(changed_keys)) > limit,
    }


# --- experiments ---------------------------------------------------------------------------


def experiment_metrics(experiment: Experiment) -> dict[str, dict[str, float]]:
    """Per metric: mean, count, min and max over the experiment's results."""
    sql = """
        SELECT s.key, avg(s.value::float8), count(*), min(s.value::float8), max(s.value::float8)
        FROM datasets_experimentresult r, jsonb_each_text(r.scores) s
        WHERE r.organization_id = %s AND r.experiment_id = %s
        GROUP BY s.key ORDER BY s.key
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [experiment.organization_id, experiment.pk])
        return {
            name: {"mean": mean, "count": count, "min": low, "max": high}
            for name, mean, count, low, high in cursor.fetchall()
        }


def _scores_by_key(experiment: Experiment) -> dict[str, tuple[dict[str, float], str]]:
    return {
        key: (scores, trace)
        for key, scores, trace in ExperimentResult.objects.filter(experiment=experiment)
        .values_list("key", "scores", "trace_external_id")
        .iterator(chunk_size=5000)
    }


def experiment_compare(
    *, baseline: Experiment, candidate: Experiment, limit: int = MAX_LISTED
) -> dict[str, Any]:
    """Per-metric mean deltas (candidate minus baseline) and the items whose scores
    fell (regressed) or rose (improved) on the items both ran. Higher is better."""
    if baseline.dataset_id != candidate.dataset_id:
        raise DomainError("Compare experiments on the same dataset.", code="different_datasets")
    base_metrics = (
        baseline.summary.get("metrics") if baseline.summary else None
    ) or experiment_metrics(baseline)
    cand_metrics = (
        candidate.summary.get("metrics") if candidate.summary else None
    ) or experiment_metrics(candidate)
    metrics = {}
    for name in sorted(set(base_metrics) | set(cand_metrics)):
        before = base_metrics.get(name, {}).get("mean")
        after = cand_metrics.get(name, {}).get("mean")
        metrics[name] = {
            "baseline": before,
            "candidate": after,
            "delta": after - before if before is not None and after is not None else None,
        }
    base, cand = _scores_by_key(baseline), _scores_by_key(candidate)
    regressed, improved = [], []
    counts = defaultdict(int)
    for key in sorted(base.keys() & cand.keys()):
        (old, old_trace), (new, new_trace) = base[key], cand[key]
        deltas = {m: new[m] - old[m] for m in old.keys() & new.keys() if new[m] != old[m]}
        if not deltas:
            counts["same"] += 1
            continue
        entry = {
            "id": key,
            "deltas": deltas,
            "baseline_trace_id": old_trace or None,
            "candidate_trace_id": new_trace or None,
        }
        if any(d < 0 for d in deltas.values()):
            counts["regressed"] += 1
            if len(regressed) < limit:
                regressed.append(entry)
        else:
            counts["improved"] += 1
            if len(improved) < limit:
                improved.append(entry)
    return {
        "baseline": baseline.pk,
        "candidate": candidate.pk,
        "baseline_version": baseline.version.number,
        "candidate_version": candidate.version.number,
        "metrics": metrics,
        "counts": {
            "regressed": counts["regressed"],
            "improved": counts["improved"],
            "unchanged": counts["same"],
            "only_in_baseline": len(base.keys() - cand.keys()),
            "only_in_candidate": len(cand.keys() - base.keys()),
        },
        "regressed": regressed,
        "improved": improved,
    }


COMPARE_SHOW = ("changed", "regressed", "improved", "unchanged", "all")
COMPARE_PAGE = 25


def _status_of(old: dict[str, float] | None, new: dict[str, float] | None) -> str:
    """An item's place in a comparison: regressed (a shared metric fell), improved (one
    rose, none fell), unchanged, or only in one of the runs."""
    if old is None:
        return "only_in_candidate"
    if new is None:
        return "only_in_baseline"
    deltas = [new[m] - old[m] for m in old.keys() & new.keys() if new[m] != old[m]]
    if any(d < 0 for d in deltas):
        return "regressed"
    return "improved" if deltas else "unchanged"


def experiment_compare_items(
    *,
    baseline: Experiment,
    candidate: Experiment,
    show: str = "changed",
    after: str = "",
    limit: int = COMPARE_PAGE,
    viewer: Any = None,
) -> dict[str, Any]:
    """One page of a comparison item by item (by key, after ``after``): both outputs,
    both runs' scores with the change per metric, the errors, the traces, and the
    verdicts people gave on each trace (the scores ``viewer`` may see). ``show`` keeps
    the changed items (regressed or improved), one kind, or all of them."""
    from traces import hooks as trace_hooks
    from traces.models import Score, ScoreSource

    base, cand = _scores_by_key(baseline), _scores_by_key(candidate)
    wanted = {"changed": ("regressed", "improved"), "all": None}.get(show, (show,))
    keys = []
    for key in sorted(base.keys() | cand.keys()):
        if after and key <= after:
            continue
        status = _status_of(base.get(key, (None,))[0], cand.get(key, (None,))[0])
        if wanted is None or status in wanted:
            keys.append((key, status))
            if len(keys) > limit:
                break
    more = len(keys) > limit
    keys = keys[:limit]
    results: dict[tuple[int, str], dict[str, Any]] = {
        (experiment_id, key): {"output": output, "error": error, "trace_id": trace_id}
        for experiment_id, key, output, error, trace_id in ExperimentResult.objects.filter(
            experiment_id__in=(baseline.pk, candidate.pk), key__in=[k for k, _s in keys]
        ).values_list("experiment_id", "key", "output", "error", "trace_id")
    }
    trace_ids = {r["trace_id"] for r in results.values() if r["trace_id"]}
    verdicts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if trace_ids:
        for trace_id, name, value, label, author in (
            Score.objects.filter(trace_id__in=trace_ids, source=ScoreSource.HUMAN)
            .filter(trace_hooks.scores_visible_to(viewer))
            .order_by("name", "id")
            .values_list("trace_id", "name", "value", "label", "author__email")
        ):
            verdicts[trace_id].append(
                {"name": name, "value": value, "label": label, "author": author or ""}
            )
    items = []
    for key, status in keys:
        sides = {}
        for side, experiment, scores in (
            ("baseline", baseline, base),
            ("candidate", candidate, cand),
        ):
            result = results.get((experiment.pk, key))
            run_scores, trace_external_id = scores.get(key, ({}, ""))
            sides[side] = (
                None
                if result is None
                else {
                    **result,
                    "scores": run_scores,
                    "trace_external_id": trace_external_id or None,
                    "verdicts": verdicts.get(result["trace_id"], []),
                }
            )
        old = (sides["baseline"] or {}).get("scores", {})
        new = (sides["candidate"] or {}).get("scores", {})
        metrics = [
            {
                "name": name,
                "baseline": old.get(name),
                "candidate": new.get(name),
                "delta": new[name] - old[name] if name in old and name in new else None,
            }
            for name in sorted(old.keys() | new.keys())
        ]
        items.append({"id": key, "status": status, "metrics": metrics, **sides})
    return {"items": items, "next_after": keys[-1][0] if more and keys else "", "show": show}


def record_of_text(text: str) -> dict[str, Any]:
    return orjson.loads(text)
