"""Per-project trace retention (issue 13): the policy (model, service, API, page) and
the beat task applying it on real PostgreSQL partitions: expired traces deleted per
project in batches, a month's partition dropped once nothing in it is kept, reviewed
or referenced traces kept with their spans, another tenant's rows untouched."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from hitl.audit import Actor
from hitl.tenancy import TenantScopeError, tenant_scope
from projects import services as project_services
from review import services as review_services
from tests.review.helpers import make_queue
from tests.traces.read_builders import make_score, make_span, make_trace
from traces import partitions, retention, services, tasks
from traces.models import Feedback, Score, Trace, TraceRetention

MARCH = datetime(2020, 3, 10, tzinfo=UTC)
MARCH_PARTITION = "traces_span_y2020m03"


def _fetch(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _exists(partition: str) -> bool:
    return _fetch("SELECT to_regclass(%s) IS NOT NULL", [partition])[0][0]


def _spans_of(trace: Trace) -> int:
    # Raw, across tenants: what is really in the table.
    return _fetch("SELECT count(*) FROM traces_span WHERE trace_id = %s", [trace.pk])[0][0]


def _trace_ids(organization_id: int) -> set[str]:
    with tenant_scope(organization_id):
        return set(Trace.objects.values_list("external_id", flat=True))


def _set(project, days, user=None) -> None:
    with tenant_scope(project.organization_id):
        services.trace_retention_set(actor=Actor(user=user), project=project, days=days)


def _old_trace(project, external_id: str, *, spans: int = 2, at: datetime = MARCH) -> Trace:
    trace = make_trace(project, external_id, created_at=at)
    for n in range(spans):
        make_span(trace, f"{external_id}-s{n}")
    make_score(trace, "correctness", 0.2)  # automated: it goes with the trace
    with tenant_scope(project.organization_id):
        Feedback.objects.create(project=project, trace=trace, kind="thumbs", value=-1)
    return trace


def _keeps(now: datetime, moment: datetime) -> int:
    """A retention in days that still keeps ``moment``'s whole month."""
    return (now - partitions.month_start(moment)).days + 40


@pytest.fixture
def second_project(tenant):
    with tenant_scope(tenant.organization.pk):
        return project_services.project_create(actor=Actor(user=tenant.owner), name="Second app")


# --- the task ----------------------------------------------------------------------------
def test_two_policies_in_one_partition_then_both_expire(tenant, second_project, settings):
    settings.HITL_TRACE_RETENTION_DAYS = 0
    now = timezone.now()
    short = [_old_trace(tenant.project, f"a-{n}") for n in range(5)]
    recent = make_trace(tenant.project, "a-recent")
    make_span(recent, "r1")
    long_kept = _old_trace(second_project, "b-old")
    _set(tenant.project, 30)
    _set(second_project, _keeps(now, MARCH))

    result = retention.retention_apply(now=now, batch_size=2)  # three batches for A

    assert result.dropped == []  # B still keeps part of March: the partition stays
    assert result.deleted == 5 and result.kept == 0
    assert _exists(MARCH_PARTITION)
    assert _trace_ids(tenant.organization.pk) == {"a-recent", "b-old"}
    assert [_spans_of(t) for t in short] == [0] * 5
    assert _spans_of(long_kept) == 2 and _spans_of(recent) == 1
    with tenant_scope(tenant.organization.pk):
        assert not Score.objects.filter(trace_id__in=[t.pk for t in short]).exists()
        assert not Feedback.objects.filter(trace_id__in=[t.pk for t in short]).exists()
        assert Score.objects.filter(trace=long_kept).exists()
        # Deleting a score records it, by the task.
        gone = Score.history.filter(trace_id=short[0].pk, history_type="-").get()
        assert gone.history_source == "task"

    # A rerun has nothing to do.
    assert retention.retention_apply(now=now).as_dict() == {
        "dropped": [],
        "deleted": 0,
        "kept": 0,
    }

    # B shortens its policy: nothing in March is kept any more, so the month is dropped
    # (no row-by-row delete of its spans) and B's trace rows follow.
    _set(second_project, 30)
    result = retention.retention_apply(now=now)
    assert MARCH_PARTITION in result.dropped
    assert not _exists(MARCH_PARTITION)
    assert result.deleted == 1
    assert _trace_ids(tenant.organization.pk) == {"a-recent"}
    assert _spans_of(recent) == 1


def test_the_default_applies_to_projects_without_a_policy(tenant, second_project, settings):
    now = timezone.now()
    follows = _old_trace(tenant.project, "default-old")
    keeps = _old_trace(second_project, "own-policy-old")
    _set(second_project, 0)  # its own policy: keep everything
    settings.HITL_TRACE_RETENTION_DAYS = 30

    result = tasks.maintain_span_partitions()

    assert result["deleted"] == 1 and MARCH_PARTITION not in result["dropped"]
    assert _trace_ids(tenant.organization.pk) == {"own-policy-old"}
    assert _spans_of(follows) == 0 and _spans_of(keeps) == 2

    settings.HITL_TRACE_RETENTION_DAYS = 0  # nothing in force: nothing is read or done
    assert retention.retention_apply(now=now).as_dict() == {
        "dropped": [],
        "deleted": 0,
        "kept": 0,
    }


def test_reviewed_or_referenced_traces_keep_their_rows(tenant, settings, caplog):
    settings.HITL_TRACE_RETENTION_DAYS = 0
    now = timezone.now()
    plain = _old_trace(tenant.project, "plain")
    human = _old_trace(tenant.project, "human-scored")
    span_item = _old_trace(tenant.project, "span-in-a-queue")
    trace_item = _old_trace(tenant.project, "trace-in-a-queue")
    with tenant_scope(tenant.organization.pk):
        human_span = human.spans.get(external_id="human-scored-s0")
        queued_span = span_item.spans.get(external_id="span-in-a-queue-s1")
    make_score(human, "helpful", 1.0, span=human_span, source="human", author=tenant.reviewer)
    queue = make_queue(tenant)
    with tenant_scope(tenant.organization.pk):
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, span_id=queued_span.pk
        )
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, trace_id=trace_item.pk
        )
    _set(tenant.project, 30)

    with caplog.at_level(logging.WARNING, logger="traces.retention"):
        result = retention.retention_apply(now=now, batch_size=3)

    # Every project has expired March, but reviews point into it: it stays.
    assert result.dropped == [] and _exists(MARCH_PARTITION)
    assert result.deleted == 1 and result.kept == 3
    assert _trace_ids(tenant.organization.pk) == {
        "human-scored",
        "span-in-a-queue",
        "trace-in-a-queue",
    }
    assert _spans_of(plain) == 0
    assert [_spans_of(t) for t in (human, span_item, trace_item)] == [2, 2, 2]
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert f"span partition {MARCH_PARTITION} kept past retention" in warnings
    assert "3 traces past their 30-day retention kept" in warnings
    with tenant_scope(tenant.organization.pk):
        # Their automated scores stay with them too.
        assert Score.objects.filter(trace=human, source="llm_judge").exists()


def test_another_tenants_rows_are_never_touched(tenant, other_tenant, settings):
    settings.HITL_TRACE_RETENTION_DAYS = 0
    now = timezone.now()
    mine = _old_trace(tenant.project, "mine")
    theirs = [_old_trace(other_tenant.project, f"theirs-{n}") for n in range(3)]
    _set(tenant.project, 30)

    result = retention.retention_apply(now=now, batch_size=1)

    assert result.deleted == 1 and result.dropped == []
    assert _spans_of(mine) == 0
    assert _trace_ids(other_tenant.organization.pk) == {"theirs-0", "theirs-1", "theirs-2"}
    assert [_spans_of(t) for t in theirs] == [2, 2, 2]
    with tenant_scope(other_tenant.organization.pk):
        assert Score.objects.count() == 3 and Feedback.objects.count() == 3

    # The raw span delete states its tenant: another organization's is refused.
    with tenant_scope(tenant.organization.pk), pytest.raises(TenantScopeError):
        retention._delete_traces(
            other_tenant.organization.pk, [theirs[0].pk], newest=theirs[0].created_at
        )
    assert _spans_of(theirs[0]) == 2


def test_an_empty_expired_month_is_dropped_and_recent_ones_stay(tenant, settings):
    settings.HITL_TRACE_RETENTION_DAYS = 0
    now = timezone.now()
    with tenant_scope(tenant.organization.pk):
        partitions.span_partition_ensure(datetime(2019, 5, 2, tzinfo=UTC))
    _set(tenant.project, 30)
    result = retention.retention_apply(now=now)
    assert "traces_span_y2019m05" in result.dropped
    current = partitions.partition_name(partitions.month_start(now))
    assert current not in result.dropped and _exists(current)
    assert partitions.partition_name(partitions.month_start(now - timedelta(days=40))) not in (
        result.dropped
    )


# --- the policy: service, API, page --------------------------------------------------------
def _api(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/trace-retention/"


def test_api_reads_for_members_and_keys_writes_for_managers(tenant, client_for, settings):
    settings.HITL_TRACE_RETENTION_DAYS = 180
    url = _api(tenant)
    for reader in (client_for(tenant.viewer), client_for(key=tenant.key("read"))):
        response = reader.get(url)
        assert response.status_code == 200, response.content
        assert response.json() == {
            "days": None,
            "default_days": 180,
            "effective_days": 180,
            "updated_at": None,
            "updated_by": "",
        }
    for user in (tenant.viewer, tenant.reviewer, tenant.auditor):
        assert client_for(user).put(url, {"days": 7}, format="json").status_code == 403
    assert client_for(key=tenant.key()).put(url, {"days": 7}, format="json").status_code == 403

    admin = client_for(tenant.admin)
    response = admin.put(url, {"days": 30}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["days"] == 30 and response.json()["effective_days"] == 30
    assert response.json()["updated_by"] == tenant.admin.email
    assert admin.put(url, {"days": -1}, format="json").status_code == 400
    assert admin.put(url, {"days": 40000}, format="json").status_code == 400
    assert (
        client_for(tenant.owner).put(url, {"days": 0}, format="json").json()["effective_days"] == 0
    )
    with tenant_scope(tenant.organization.pk):
        policy = TraceRetention.objects.get(project=tenant.project)
        history = list(policy.history.order_by("history_id").values_list("days", "history_user"))
    assert history == [(30, tenant.admin.pk), (0, tenant.owner.pk)]

    # null: back to the default (the row goes; its history stays).
    response = admin.put(url, {"days": None}, format="json")
    assert response.json()["days"] is None and response.json()["effective_days"] == 180
    with tenant_scope(tenant.organization.pk):
        assert not TraceRetention.objects.exists()
        assert TraceRetention.history.filter(history_type="-").count() == 1


def test_api_answers_another_tenant_404(tenant, other_tenant, client_for):
    _set(tenant.project, 12)
    outsider = client_for(other_tenant.owner)
    assert outsider.get(_api(tenant)).status_code == 404
    assert outsider.put(_api(tenant), {"days": 1}, format="json").status_code == 404
    assert client_for(key=other_tenant.key()).get(_api(tenant)).status_code == 404
    with tenant_scope(tenant.organization.pk):
        assert TraceRetention.objects.get(project=tenant.project).days == 12


def test_service_refuses_invalid_days(tenant):
    from hitl.exceptions import DomainError

    for days in (-1, 36501, True, 1.5):
        with pytest.raises(DomainError):
            _set(tenant.project, days)


def _page(tenant) -> str:
    return reverse(
        "traces-retention",
        kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug},
    )


def test_page_shows_the_retention_and_managers_set_it(tenant, client, settings):
    settings.HITL_TRACE_RETENTION_DAYS = 0
    client.force_login(tenant.viewer)
    page = client.get(_page(tenant))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Traces are <strong>kept</strong>" in body and "retention-form" not in body
    assert client.post(_page(tenant), {"mode": "days", "days": "5"}).status_code == 403
    explorer = reverse(
        "traces-explorer",
        kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug},
    )
    assert _page(tenant) in client.get(explorer).content.decode()

    client.force_login(tenant.owner)
    assert 'id="retention-form"' in client.get(_page(tenant)).content.decode()
    response = client.post(_page(tenant), {"mode": "days", "days": "45"})
    assert response.status_code == 302
    body = client.get(response["Location"]).content.decode()
    assert "kept for <strong>45 days</strong>" in body
    assert "now kept for 45 days" in body  # the message
    bad = client.post(_page(tenant), {"mode": "days", "days": "soon"})
    assert bad.status_code == 400 and 'id="retention-error"' in bad.content.decode()
    client.post(_page(tenant), {"mode": "default"})
    with tenant_scope(tenant.organization.pk):
        assert not TraceRetention.objects.exists()
