"""Trace retention's rule for what keeps an expired trace (``traces.retention.keeps``), and
threads left without a trace: an experiment result no longer keeps its trace (it keeps
its external id, output and scores), a dataset item's provenance and reviews do, for
the row-by-row delete and the whole-partition drop alike; a thread whose last trace
retention deleted goes too, unless a score, feedback, review or dataset item points at
it. Real rows on real partitions."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone

from datasets import services as dataset_services
from datasets.models import DatasetItem, ExperimentResult
from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from review import services as review_services
from tests.datasets.helpers import import_rows, make_dataset
from tests.review.helpers import make_queue
from tests.traces.read_builders import make_span, make_thread, make_trace
from traces import retention, services
from traces.models import Feedback, Score, Thread, Trace

MARCH = datetime(2020, 3, 10, tzinfo=UTC)
MARCH_PARTITION = "traces_span_y2020m03"


def _exists(partition: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition])
        return cursor.fetchone()[0]


def _set(project, days) -> None:
    with tenant_scope(project.organization_id):
        services.trace_retention_set(actor=Actor(), project=project, days=days)


def _old_trace(project, external_id: str, *, thread=None, at: datetime = MARCH) -> Trace:
    trace = make_trace(project, external_id, created_at=at, thread=thread)
    make_span(trace, f"{external_id}-s0")
    return trace


def _traces(tenant) -> set[str]:
    with tenant_scope(tenant.organization.pk):
        return set(Trace.objects.values_list("external_id", flat=True))


def _threads(tenant) -> set[str]:
    with tenant_scope(tenant.organization.pk):
        return set(Thread.objects.values_list("external_id", flat=True))


def _experiment_result(tenant, trace: Trace) -> ExperimentResult:
    dataset = make_dataset(tenant, name="regression set")
    import_rows(tenant, dataset, [{"id": "case-1", "input": {"q": "dose?"}}])
    owner = Actor(user=tenant.owner)
    with tenant_scope(tenant.organization.pk):
        experiment = dataset_services.experiment_create(actor=owner, dataset=dataset, name="run")
        dataset_services.experiment_results_post(
            actor=owner,
            experiment=experiment,
            results=[
                {
                    "id": "case-1",
                    "output": "2 g",
                    "scores": {"accuracy": 1.0},
                    "trace_id": trace.external_id,
                }
            ],
        )
        result = ExperimentResult.objects.get(experiment=experiment)
    assert result.trace_id == trace.pk
    return result


def test_the_rule_names_every_reference_and_what_it_keeps():
    # A new reference to a trace, span or thread shows up here: decide whether it keeps
    # an expired trace (``keeps``) and update this list.
    assert {(r.table, r.column, r.target) for r in retention.referrers()} == {
        ("datasets_datasetitem", "span_id", "span"),
        ("datasets_datasetitem", "thread_id", "thread"),
        ("datasets_datasetitem", "trace_id", "trace"),
        ("review_annotation", "span_id", "span"),
        ("review_annotation", "thread_id", "thread"),
        ("review_annotation", "trace_id", "trace"),
        ("review_comment", "span_id", "span"),
        ("review_comment", "trace_id", "trace"),
        ("review_goldanswer", "trace_id", "trace"),
        ("review_queueitem", "span_id", "span"),
        ("review_queueitem", "thread_id", "thread"),
        ("review_queueitem", "trace_id", "trace"),
        ("traces_feedback", "thread_id", "thread"),
        ("traces_score", "thread_id", "thread"),
    }
    assert not retention.keeps(ExperimentResult._meta.get_field("trace"))
    assert retention.keeps(DatasetItem._meta.get_field("trace"))
    assert not retention.keeps(DatasetItem.history.model._meta.get_field("trace"))


def test_an_experiment_result_lets_its_trace_go_and_keeps_what_it_recorded(tenant, settings):
    settings.HITL_TRACE_RETENTION_DAYS = 0
    ran = _old_trace(tenant.project, "experiment-run")
    result = _experiment_result(tenant, ran)
    _set(tenant.project, 30)

    outcome = retention.retention_apply(now=timezone.now())

    # Nothing else is in March: the month's spans go with the partition, the trace row
    # after it, and the result stays with what it recorded.
    assert MARCH_PARTITION in outcome.dropped and not _exists(MARCH_PARTITION)
    assert outcome.deleted == 1 and outcome.kept == 0
    assert _traces(tenant) == set()
    with tenant_scope(tenant.organization.pk):
        result.refresh_from_db()
    assert result.trace_id is None
    assert (result.trace_external_id, result.output, result.scores) == (
        "experiment-run",
        "2 g",
        {"accuracy": 1.0},
    )


def test_a_dataset_items_provenance_keeps_its_trace_and_month(tenant, settings):
    settings.HITL_TRACE_RETENTION_DAYS = 0
    curated = _old_trace(tenant.project, "curated")
    ran = _old_trace(tenant.project, "experiment-run")
    _old_trace(tenant.project, "plain")
    _experiment_result(tenant, ran)
    dataset = make_dataset(tenant, name="golden")
    with tenant_scope(tenant.organization.pk):
        item = dataset_services.dataset_promote(
            actor=Actor(user=tenant.owner), dataset=dataset, trace_id=curated.external_id
        ).item
    assert item.trace_id == curated.pk
    _set(tenant.project, 30)

    outcome = retention.retention_apply(now=timezone.now(), batch_size=2)

    # The curated trace keeps the month (its spans are in it); the experiment's trace and
    # the plain one are deleted row by row.
    assert outcome.dropped == [] and _exists(MARCH_PARTITION)
    assert (outcome.deleted, outcome.kept) == (2, 1)
    assert _traces(tenant) == {"curated"}
    with tenant_scope(tenant.organization.pk):
        assert curated.spans.count() == 1
        assert not ExperimentResult.objects.filter(trace__isnull=False).exists()
        assert ExperimentResult.objects.get().trace_external_id == "experiment-run"


def test_threads_left_without_a_trace_go_unless_something_points_at_them(tenant, settings):
    settings.HITL_TRACE_RETENTION_DAYS = 0
    project = tenant.project
    threads = {
        name: make_thread(project, name)
        for name in (
            "emptied",
            "emptied-with-experiment",
            "thread-feedback",
            "thread-score",
            "still-active",
            "in-a-queue",
            "curated-thread",
        )
    }
    for name, thread in threads.items():
        _old_trace(project, f"{name}-1", thread=thread)
        _old_trace(project, f"{name}-2", thread=thread)
    make_trace(project, "still-active-new", thread=threads["still-active"])
    _experiment_result(tenant, _trace(tenant, "emptied-with-experiment-1"))
    with tenant_scope(tenant.organization.pk):
        Feedback.objects.create(
            project=project, thread=threads["thread-feedback"], kind="thumbs", value=1
        )
        Score.objects.create(
            project=project,
            thread=threads["thread-score"],
            name="resolved",
            value=1.0,
            data_type="numeric",
            source="llm_judge",
        )
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner),
            queue=make_queue(tenant),
            thread_id=threads["in-a-queue"].pk,
        )
        dataset_services.dataset_promote(
            actor=Actor(user=tenant.owner),
            dataset=make_dataset(tenant, name="conversations"),
            thread_id="curated-thread",
        )
    _set(project, 30)

    outcome = retention.retention_apply(now=timezone.now(), batch_size=3)

    # Reviews and provenance on a thread keep its traces (the conversation); a thread's
    # own score or feedback keeps the thread only; an experiment result keeps nothing.
    assert _traces(tenant) == {
        "still-active-new",
        "in-a-queue-1",
        "in-a-queue-2",
        "curated-thread-1",
        "curated-thread-2",
    }
    assert (outcome.deleted, outcome.kept) == (10, 4)
    assert _threads(tenant) == {
        "thread-feedback",
        "thread-score",
        "still-active",
        "in-a-queue",
        "curated-thread",
    }
    assert outcome.threads == 2
    with tenant_scope(tenant.organization.pk):
        assert Feedback.objects.filter(thread=threads["thread-feedback"]).exists()
        assert Score.objects.filter(thread=threads["thread-score"]).exists()
    # A rerun has nothing more to do.
    again = retention.retention_apply(now=timezone.now())
    assert (again.deleted, again.threads) == (0, 0)


def _trace(tenant, external_id: str) -> Trace:
    with tenant_scope(tenant.organization.pk):
        return Trace.objects.get(external_id=external_id)


def test_another_tenants_threads_are_not_touched(tenant, other_tenant, settings):
    settings.HITL_TRACE_RETENTION_DAYS = 0
    ours = make_thread(tenant.project, "shared-name")
    theirs = make_thread(other_tenant.project, "shared-name")
    _old_trace(tenant.project, "ours-1", thread=ours)
    make_trace(other_tenant.project, "theirs-new", thread=theirs)
    _set(tenant.project, 30)
    _set(other_tenant.project, 30)

    outcome = retention.retention_apply(now=timezone.now())

    assert outcome.threads == 1
    assert _threads(tenant) == set()
    assert _threads(other_tenant) == {"shared-name"}
    assert _traces(other_tenant) == {"theirs-new"}
