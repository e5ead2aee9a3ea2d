"""A project's quality alert thresholds: the site's defaults until set, a service with
history and reasons for bad values, an API every role reads and managers write (another
organization's answers 404), and the agreement and alignment alert checks judging
reports by the project's thresholds and window, not the global ones."""

from __future__ import annotations

import math

import pytest

from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import DomainError
from review.quality.models import (
    AgreementReport,
    AlertKind,
    AlignmentReport,
    QualityAlert,
    QualitySettings,
)
from review.quality.services import alignment
from review.quality.services.alerts import (
    agreement_alert_check,
    quality_settings_update,
    quality_thresholds,
)
from tests.review.helpers import make_config, make_queue
from tests.review.test_alignment import _mapping, _setup


def _url(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/quality-settings/"


def _update(tenant, **values):
    values = {"agreement_threshold": 0.8, "alignment_threshold": 0.8, "window": 3} | values
    with tenancy.tenant_scope(tenant.organization.pk):
        return quality_settings_update(
            actor=Actor(user=tenant.owner), project=tenant.project, **values
        )


def test_defaults_until_set_then_the_projects_own_with_history(tenant, other_tenant, settings):
    settings.HITL_QUALITY_ALERT_THRESHOLD = 0.7
    settings.HITL_QUALITY_ALERT_WINDOW = 5
    with tenancy.tenant_scope(tenant.organization.pk):
        limits = quality_thresholds(tenant.project.pk)
    assert (limits.agreement_threshold, limits.alignment_threshold, limits.window) == (0.7, 0.7, 5)
    assert not limits.is_custom

    _update(tenant, agreement_threshold=0.6, alignment_threshold=0.9, window=2)
    row = _update(tenant, agreement_threshold=0.65, alignment_threshold=0.9, window=2)
    with tenancy.tenant_scope(tenant.organization.pk):
        limits = quality_thresholds(tenant.project.pk)
        assert QualitySettings.objects.count() == 1
        history = list(row.history.order_by("history_id"))
    assert (limits.agreement_threshold, limits.alignment_threshold, limits.window) == (
        0.65,
        0.9,
        2,
    )
    assert limits.is_custom and limits.updated_by_id == tenant.owner.pk
    assert [h.history_type for h in history] == ["+", "~"]
    assert [h.agreement_threshold for h in history] == [0.6, 0.65]
    assert history[-1].history_user_id == tenant.owner.pk
    # Another organization's project keeps the defaults.
    with tenancy.tenant_scope(other_tenant.organization.pk):
        assert not quality_thresholds(other_tenant.project.pk).is_custom


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"agreement_threshold": 1.5}, "agreement_threshold"),
        ({"agreement_threshold": math.nan}, "agreement_threshold"),
        ({"alignment_threshold": -0.1}, "alignment_threshold"),
        ({"alignment_threshold": "0.5"}, "alignment_threshold"),
        ({"window": 0}, "window"),
        ({"window": 51}, "window"),
        ({"window": True}, "window"),
        ({"window": 2.5}, "window"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(tenant, values, field):
    with pytest.raises(DomainError) as refused:
        _update(tenant, **values)
    assert set(refused.value.details) == {field}
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not QualitySettings.objects.exists()


def test_api_every_role_reads_managers_write_other_tenants_404(tenant, other_tenant, client_for):
    url = _url(tenant)
    for user in (tenant.viewer, tenant.reviewer, tenant.auditor):
        read = client_for(user).get(url)
        assert read.status_code == 200, read.content
        assert read.json()["is_default"] is True
        assert read.json()["agreement_threshold"] == 0.8
    assert client_for(key=tenant.key("read")).get(url).status_code == 200

    body = {"agreement_threshold": 0.55, "alignment_threshold": 0.7, "window": 6}
    for user in (tenant.reviewer, tenant.auditor, tenant.viewer):
        refused = client_for(user).put(url, body, format="json")
        assert refused.status_code == 403, refused.content
    changed = client_for(tenant.admin).put(url, body, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json() | {"updated_at": None} == {
        **body,
        "is_default": False,
        "updated_at": None,
        "updated_by": tenant.admin.pk,
    }
    assert client_for(tenant.viewer).get(url).json()["window"] == 6

    bad = client_for(tenant.owner).put(url, {**body, "window": 0}, format="json")
    assert bad.status_code == 400 and "window" in bad.json()["error"]["details"]
    unknown = client_for(tenant.owner).put(url, {**body, "threshold": 1}, format="json")
    assert unknown.status_code == 400 and "threshold" in unknown.json()["error"]["details"]
    missing = client_for(tenant.owner).put(url, {"window": 3}, format="json")
    assert missing.status_code == 400
    assert "agreement_threshold" in missing.json()["error"]["details"]

    # Another organization's owner: 404 on the victim's project, reading and writing,
    # and nothing changes.
    outsider = client_for(other_tenant.owner)
    assert outsider.get(url).status_code == 404
    assert outsider.put(url, {**body, "window": 9}, format="json").status_code == 404
    with tenancy.tenant_scope(tenant.organization.pk):
        assert QualitySettings.objects.get().window == 6
    # An API key of another organization's project too.
    assert client_for(key=other_tenant.key("all")).get(url).status_code == 404


def _report(tenant, queue, config, value):
    with tenancy.tenant_scope(tenant.organization.pk):
        AgreementReport.objects.create(
            project=tenant.project,
            queue=queue,
            config=config,
            config_version=1,
            answers_covered=1,
            level="interval",
            value=value,
        )
        return agreement_alert_check(queue=queue, config_id=config.pk)


def test_agreement_alerts_use_the_projects_threshold_and_window(tenant):
    config = make_config(tenant, name="faithful")
    queue = make_queue(tenant, configs=[config])
    # The default (0.8 over 3) would alert on 0.75; the project accepts down to 0.7.
    _update(tenant, agreement_threshold=0.7, window=2)
    assert _report(tenant, queue, config, 0.75) is None
    # 0.75 and 0.6: a rolling mean of 0.675 over the project's window of 2 crosses.
    alert = _report(tenant, queue, config, 0.6)
    assert alert is not None and alert.kind == AlertKind.AGREEMENT
    assert alert.threshold == 0.7 and alert.window == 2
    assert alert.value == pytest.approx(0.675)
    # Still low: the same drop, no second alert.
    assert _report(tenant, queue, config, 0.6) is None
    # A stricter project alerts where the default would not.
    other_config = make_config(tenant, name="complete")
    _update(tenant, agreement_threshold=0.95, window=1)
    strict = _report(tenant, queue, other_config, 0.9)
    assert strict is not None and strict.threshold == 0.95 and strict.window == 1


def test_alignment_alerts_use_the_projects_threshold(tenant):
    config, _items = _setup(tenant)
    mapping = _mapping(tenant, config, source_version="v1")  # agrees 6 of 8: 0.75
    _update(tenant, alignment_threshold=0.7, window=1)
    with tenancy.tenant_scope(tenant.organization.pk):
        alignment.alignment_refresh(mapping_id=mapping.pk)
        assert not QualityAlert.objects.filter(kind=AlertKind.ALIGNMENT).exists()
    # Under the default 0.8 the same figure alerts (a fresh series: a crossing needs a
    # window before it that was not low).
    _update(tenant, alignment_threshold=0.8, window=1)
    with tenancy.tenant_scope(tenant.organization.pk):
        AlignmentReport.objects.filter(mapping=mapping).delete()
        alignment.alignment_refresh(mapping_id=mapping.pk)
        [alert] = QualityAlert.objects.filter(kind=AlertKind.ALIGNMENT)
    assert alert.threshold == 0.8 and alert.value == pytest.approx(0.75)
