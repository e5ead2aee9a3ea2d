"""Metric alignment: an LLM judge's scores against the reviewers' answers on the same
traces, equal to scikit-learn and SciPy on the same pairs; bad input gives a reason;
a real worker computes a report from the outbox and an alert fires under threshold."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from hitl import outbox, tenancy
from hitl.audit import Actor
from projects.models import Event
from projects.notifications import catalogue
from review import services
from review.quality.alignment import alignment_figures, average_ranks
from review.quality.models import AlertKind, AlignmentReport, QualityAlert
from review.quality.services import alignment
from tests.csv_checks import assert_runs_nothing
from tests.projects.test_notifications import make_destination
from tests.review.helpers import add_traces, make_config, make_queue
from traces.models import Score

# Per trace: (reviewer's answer on 0..1, the judge's score v1, the judge's score v2).
PAIRS = [
    (1.0, 0.9, 0.9),
    (0.75, 0.8, 0.7),
    (0.25, 0.7, 0.2),  # the judge v1 passes what the reviewer fails
    (0.0, 0.1, 0.1),
    (0.5, 0.3, 0.6),  # the judge v1 fails what the reviewer passes
    (1.0, 0.95, 0.9),
    (0.25, 0.2, 0.3),
    (0.75, 0.85, 0.8),
]


def _setup(tenant, pairs=PAIRS):
    config = make_config(tenant, name="helpfulness")
    queue = make_queue(tenant, configs=[config], reviewers=[tenant.reviewer])
    items = add_traces(tenant, queue, len(pairs))
    reviewer = Actor(user=tenant.reviewer)
    with tenancy.tenant_scope(tenant.organization.pk):
        answer_of = {item.pk: pair[0] for item, pair in zip(items, pairs, strict=True)}
        while (lease := services.queue_claim_next(actor=reviewer, queue=queue)) is not None:
            services.assignment_submit(
                actor=reviewer,
                assignment_id=lease.pk,
                values={str(config.pk): answer_of[lease.item_id]},
            )
        for item, (_human, v1, v2) in zip(items, pairs, strict=True):
            for version, value in (("v1", v1), ("v2", v2)):
                Score.objects.create(
                    project=tenant.project, trace_id=item.trace_id, name="judge-helpful",
                    data_type="numeric", value=value, source="llm_judge",
                    source_name="gpt-judge", source_version=version,
                )  # fmt: skip
    return config, items


def _mapping(tenant, config, **fields):
    fields.setdefault("metric_threshold", 0.5)
    fields.setdefault("human_threshold", 0.5)
    with tenancy.tenant_scope(tenant.organization.pk):
        return alignment.alignment_mapping_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            score_name="judge-helpful",
            config_id=config.pk,
            **fields,
        )


def test_a_report_equals_sklearn_and_scipy(tenant, settings):
    settings.HITL_QUALITY_ALERT_THRESHOLD = 0.5
    config, _items = _setup(tenant)
    mapping = _mapping(tenant, config, source_version="v1")
    with tenancy.tenant_scope(tenant.organization.pk):
        report = alignment.alignment_refresh(mapping_id=mapping.pk)
    human = np.array([p[0] for p in PAIRS])
    metric = np.array([p[1] for p in PAIRS])
    hp, mp = human >= 0.5, metric >= 0.5
    (tn, fp), (fn, tp) = confusion_matrix(hp, mp, labels=[False, True])
    figures = report.figures
    assert figures["confusion"] == {
        "true_positive": tp,
        "false_positive": fp,
        "false_negative": fn,
        "true_negative": tn,
    }
    assert (fp, fn) == (1, 1)
    assert report.n_items == len(PAIRS)
    assert report.value == pytest.approx((mp == hp).mean(), abs=1e-12)
    assert report.kappa == pytest.approx(cohen_kappa_score(hp, mp), abs=1e-9)
    numeric = figures["numeric"]
    assert numeric["pearson"]["value"] == pytest.approx(stats.pearsonr(metric, human)[0], abs=1e-9)
    assert numeric["spearman"]["value"] == pytest.approx(
        stats.spearmanr(metric, human)[0], abs=1e-9
    )
    assert numeric["mae"]["value"] == pytest.approx(np.abs(metric - human).mean(), abs=1e-12)
    assert numeric["rmse"]["value"] == pytest.approx(
        np.sqrt(((metric - human) ** 2).mean()), abs=1e-12
    )
    # The worst disagreements first: the false positive and false negative.
    kinds = [w["kind"] for w in figures["worst_items"][:2]]
    assert sorted(kinds) == ["false_negative", "false_positive"]
    assert all("trace_id" in w["item"] for w in figures["worst_items"])
    # Per judge version: an unpinned mapping breaks the figures down by version.
    other = _mapping(tenant, config)
    with tenancy.tenant_scope(tenant.organization.pk):
        every = alignment.alignment_refresh(mapping_id=other.pk)
    v2 = np.array([p[2] for p in PAIRS]) >= 0.5
    assert set(every.figures["versions"]) == {"v1", "v2"}
    assert every.figures["versions"]["v2"]["kappa"]["value"] == pytest.approx(
        cohen_kappa_score(hp, v2), abs=1e-9
    )
    assert every.figures["versions"]["v1"]["kappa"]["value"] == pytest.approx(report.kappa)


def test_bad_input_gives_a_reason_not_nan(tenant):
    config, items = _setup(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        Score.objects.create(
            project=tenant.project, trace_id=items[0].trace_id, name="judge-tone",
            data_type="categorical", label="polite", source="llm_judge",
        )  # fmt: skip
    with tenancy.tenant_scope(tenant.organization.pk):
        tone = alignment.alignment_mapping_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            score_name="judge-tone",
            config_id=config.pk,
            metric_threshold=0.5,
            human_threshold=0.5,
        )
        mismatched = alignment.alignment_refresh(mapping_id=tone.pk)
        nothing = alignment.alignment_mapping_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            score_name="judge-never-ran",
            config_id=config.pk,
            metric_threshold=0.5,
            human_threshold=0.5,
        )
        empty = alignment.alignment_refresh(mapping_id=nothing.pk)
    assert mismatched.value is None and "categorical" in mismatched.reason
    assert empty.value is None and empty.kappa is None and "No item" in empty.reason
    # One label everywhere: kappa has no figure, with why.
    same = alignment_figures(
        item_ids=[1, 2, 3], metric_pass=[True] * 3, human_pass=[True] * 3,
        metric_values=[0.9, 0.9, 0.9], human_values=[1.0, 0.5, 0.75],
    )  # fmt: skip
    assert same["kappa"]["value"] is None and "chance agreement" in same["kappa"]["reason"]
    assert same["numeric"]["pearson"]["value"] is None
    assert "same value" in same["numeric"]["pearson"]["reason"]
    assert list(average_ranks(np.array([3.0, 1.0, 3.0, 2.0]))) == [3.5, 1.0, 3.5, 2.0]


@pytest.mark.worker
def test_a_worker_computes_the_report_and_an_alert_fires(celery_worker, tenant, settings):
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = ["127.0.0.1:9"]
    make_destination(tenant, "http://127.0.0.1:9/hooks", event_types=tuple(catalogue.EVENT_TYPES))
    config, _items = _setup(tenant)
    # Mapping the score asks for its first report (agrees 6 of 8: under 0.8).
    mapping = _mapping(tenant, config, source_version="v1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with tenancy.tenant_scope(tenant.organization.pk):
            if AlignmentReport.objects.filter(mapping=mapping).exists():
                break
        outbox.relay()
        time.sleep(0.2)
    with tenancy.tenant_scope(tenant.organization.pk):
        [report] = AlignmentReport.objects.filter(mapping=mapping)
        assert report.value == pytest.approx(0.75)
        [alert] = QualityAlert.objects.filter(kind=AlertKind.ALIGNMENT)
        assert alert.value == pytest.approx(0.75) and alert.threshold == 0.8
        assert alert.subject["mapping_id"] == mapping.pk
        # The event goes out with the alert once the catalogue lists the type.
        events = list(Event.objects.filter(type="review.alignment.alert"))
        assert len(events) == int("review.alignment.alert" in catalogue.EVENT_TYPES)
        assert all(event.payload["alert"]["id"] == alert.pk for event in events)
        # A second low report is the same drop: no second alert.
        alignment.alignment_refresh(mapping_id=mapping.pk)
        assert QualityAlert.objects.filter(kind=AlertKind.ALIGNMENT).count() == 1


def test_the_api_maps_a_score_and_serves_reports_as_json_and_csv(tenant, client_for):
    config, _items = _setup(tenant)
    base = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    owner = client_for(tenant.owner)
    created = owner.post(
        f"{base}/alignment-mappings/",
        {"score_name": "judge-helpful", "config_id": config.pk, "source_version": "v1",
         "metric_threshold": 0.5, "human_threshold": 0.5},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    mapping_id = created.json()["id"]
    refused = owner.post(
        f"{base}/alignment-mappings/",
        {"score_name": "judge-helpful", "config_id": config.pk},
        format="json",
    )
    assert refused.status_code == 400 and "human_threshold" in str(refused.json())
    with tenancy.tenant_scope(tenant.organization.pk):
        alignment.alignment_refresh(mapping_id=mapping_id)
    [report] = owner.get(f"{base}/alignment-mappings/{mapping_id}/reports/").json()
    assert report["figures"]["confusion"]["false_positive"] == 1
    rows = owner.get(f"{base}/alignment-mappings/{mapping_id}/reports/csv/").content.decode()
    header, first = assert_runs_nothing(rows)[:2]
    assert header[:5] == ["computed_at", "n_items", "agreement_rate", "kappa", "true_positive"]
    assert "0.75" in first
    # Reviewers do not read reports (they name reviewers' verdicts).
    reviewer = client_for(tenant.reviewer)
    assert reviewer.get(f"{base}/alignment-mappings/{mapping_id}/reports/").status_code in (
        403,
        404,
    )


def test_the_api_refreshes_and_deletes_a_mapping(tenant, client_for):
    """The success answers of refresh (202, a report requested from a worker through the
    outbox) and delete (204, the mapping gone)."""
    from hitl.models import OutboxMessage
    from review.quality.models import AlignmentMapping

    config, _items = _setup(tenant)
    base = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    owner = client_for(tenant.owner)
    mapping_id = owner.post(
        f"{base}/alignment-mappings/",
        {"score_name": "judge-helpful", "config_id": config.pk, "human_threshold": 0.5,
         "metric_threshold": 0.5},
        format="json",
    ).json()["id"]  # fmt: skip

    def requested() -> int:
        with tenancy.tenant_scope(tenant.organization.pk):
            return OutboxMessage.objects.filter(kwargs__mapping_id=mapping_id).count()

    before = requested()
    refreshed = owner.post(f"{base}/alignment-mappings/{mapping_id}/refresh/")
    assert refreshed.status_code == 202 and refreshed.content == b""
    assert requested() == before + 1

    deleted = owner.delete(f"{base}/alignment-mappings/{mapping_id}/")
    assert deleted.status_code == 204 and deleted.content == b""
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not AlignmentMapping.objects.filter(pk=mapping_id).exists()
