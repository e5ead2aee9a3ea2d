"""The datasets pages (Django client): promotion with provenance and duplicates, import
with its per-line report, versions and the diff, exports through the outbox and the
download, experiments and their comparison, roles, and the trace explorer's action."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets import services
from datasets.models import DatasetExport, DatasetItem
from hitl import outbox, tenancy
from hitl.audit import Actor
from hitl.models import OutboxMessage
from tests.datasets.helpers import import_rows, make_dataset, make_reviewed_item
from tests.factories import add_member, make_user
from tests.page_clients import project_url, signed_in
from tests.review.helpers import make_trace


@pytest.fixture(autouse=True)
def scoped(tenant):
    """The test's own reads run in the tenant's scope (the pages enter their own)."""
    with tenancy.tenant_scope(tenant.organization.pk):
        yield


def test_promoting_a_reviewed_item_shows_its_provenance_and_refuses_a_duplicate(tenant):
    item, _trace, (first, second) = make_reviewed_item(tenant, disagree=True)
    dataset = make_dataset(tenant)
    client = signed_in(tenant.owner)
    picker = client.get(project_url(tenant, "datasets-promote"))
    assert picker.status_code == 200
    assert f'id="promote-item-{item.pk}"' in picker.content.decode()

    url = project_url(tenant, "datasets-promote")
    form = {"item": str(item.pk), "dataset": str(dataset.pk), "failure_reason": "overdose"}
    response = client.post(url, form)
    assert response.status_code == 302
    row = DatasetItem.objects.get(dataset=dataset)
    assert response["Location"] == project_url(
        tenant, "datasets-item", dataset_pk=dataset.pk, dataset_item_pk=row.pk
    )
    page = client.get(response["Location"]).content.decode()
    assert "trace:consult-7" in page
    assert project_url(tenant, "traces-detail", trace_external_id="consult-7") in page
    assert first.email in page and second.email in page
    assert "says 20 g is a tenfold overdose" in page  # a reviewer's explanation
    assert "Overdose: fails." in page  # the decision's explanation
    assert "overdose" in page and "wrong_dose" in page

    again = client.post(url, form)
    assert again.status_code == 409
    assert "Already in the dataset" in again.content.decode()
    assert DatasetItem.objects.filter(dataset=dataset).count() == 1
    with tenancy.tenant_scope(tenant.organization.pk):
        dataset.refresh_from_db()
    assert dataset.current_version == 1
    updated = client.post(url, form | {"failure_reason": "tenfold", "update_existing": "on"})
    assert updated.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        assert DatasetItem.objects.get(pk=row.pk).failure_reason == "tenfold"


def test_import_reports_the_bad_line_and_lands_the_good_ones(tenant):
    dataset = make_dataset(tenant)
    body = b'{"id": "a", "input": "one"}\n{"id": "b", "input": \n{"id": "c", "input": "three"}\n'
    client = signed_in(tenant.owner)
    url = project_url(tenant, "datasets-import", dataset_pk=dataset.pk)
    response = client.post(url, {"file": SimpleUploadedFile("cases.jsonl", body)})
    assert response.status_code == 200
    page = response.content.decode()
    assert "2 added" in page and "1 rejected" in page
    assert '<td class="num">2</td>' in page  # the bad row's line
    assert sorted(DatasetItem.objects.filter(dataset=dataset).values_list("key", flat=True)) == [
        "a",
        "c",
    ]
    # All or nothing: the same file lands nothing.
    other = make_dataset(tenant, name="strict")
    url = project_url(tenant, "datasets-import", dataset_pk=other.pk)
    response = client.post(url, {"file": SimpleUploadedFile("cases.jsonl", body), "atomic": "on"})
    assert response.status_code == 422
    assert '<td class="num">2</td>' in response.content.decode()
    assert not DatasetItem.objects.filter(dataset=other).exists()


def test_versions_page_shows_the_diff_field_by_field(tenant):
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, [{"id": "a", "input": "one"}, {"id": "b", "input": "two"}])
    import_rows(tenant, dataset, [{"id": "a", "input": "ONE"}, {"id": "c", "input": "three"}])
    client = signed_in(tenant.owner)
    url = project_url(tenant, "datasets-versions", dataset_pk=dataset.pk)
    page = client.get(f"{url}?from=1&to=2").content.decode()
    assert "1 added" in page and "0 removed" in page and "1 changed" in page
    assert "<code>c</code>" in page
    assert "one</pre>" in page and "ONE</pre>" in page
    items = client.get(project_url(tenant, "datasets-detail", dataset_pk=dataset.pk) + "?version=1")
    assert ">b</a>" in items.content.decode() and ">c</a>" not in items.content.decode()
    assert client.get(f"{url}?from=1&to=9").status_code == 422


def test_export_runs_through_the_outbox_and_downloads(tenant, settings, tmp_path):
    settings.HITL_EXPORT_DIR = str(tmp_path)
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, [{"id": "a", "input": "one", "expected_output": "1"}])
    client = signed_in(tenant.owner)
    url = project_url(tenant, "datasets-exports", dataset_pk=dataset.pk)
    assert client.post(url, {"version": "1", "format": "jsonl"}).status_code == 302
    export = DatasetExport.objects.get(dataset=dataset)
    status_url = project_url(
        tenant, "datasets-export-status", dataset_pk=dataset.pk, export_pk=export.pk
    )
    pending = client.get(status_url).content.decode()
    assert "writing" in pending and 'hx-trigger="every 2s"' in pending
    message = OutboxMessage.objects.get(task=services.EXPORT_TASK)
    outbox.execute(message_id=message.pk, organization_id=tenant.organization.pk)
    done = client.get(status_url).content.decode()
    assert "hx-trigger" not in done and "Download" in done
    download = client.get(
        project_url(tenant, "datasets-export-download", dataset_pk=dataset.pk, export_pk=export.pk)
    )
    assert download.status_code == 200
    (line,) = b"".join(download.streaming_content).splitlines()
    record = orjson.loads(line)
    assert record["id"] == "a" and record["expected_output"] == "1"


def test_experiments_list_results_and_comparison(tenant):
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, [{"id": k, "input": k} for k in ("a", "b", "c")])
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        runs = []
        for name, scores in (("baseline", (1.0, 0.0, 0.5)), ("candidate", (0.0, 1.0, 0.5))):
            experiment = services.experiment_create(actor=owner, dataset=dataset, name=name)
            services.experiment_results_post(
                actor=owner,
                experiment=experiment,
                results=[
                    {"id": k, "output": f"{name}-{k}", "scores": {"accuracy": s},
                     "trace_id": f"{name}-trace-{k}"}
                    for k, s in zip("abc", scores, strict=True)
                ],
            )  # fmt: skip
            services.experiment_finish(actor=owner, experiment=experiment)
            runs.append(experiment)
    baseline, candidate = runs
    client = signed_in(tenant.owner)
    listing = client.get(project_url(tenant, "experiments-list")).content.decode()
    assert "baseline" in listing and "candidate" in listing
    detail = client.get(project_url(tenant, "experiments-detail", experiment_pk=candidate.pk))
    assert "candidate-b" in detail.content.decode()
    compare = project_url(tenant, "experiments-compare", experiment_pk=candidate.pk)
    page = client.get(f"{compare}?{urlencode({'baseline': baseline.pk})}").content.decode()
    assert "1 regressed" in page and "1 improved" in page and "1 unchanged" in page
    assert "candidate-trace-a" in page and "baseline-trace-b" in page
    # No baseline named: the experiment's page, the reason beside "Compare with".
    refused = client.get(compare)
    assert refused.status_code == 400
    assert 'id="compare-baseline-error"' in refused.content.decode()


def test_reviewers_are_refused_and_another_projects_dataset_is_missing(tenant, other_tenant):
    reviewer = make_user("sme@example.com")
    add_member(tenant.organization, reviewer, "reviewer")
    dataset = make_dataset(tenant)
    assert signed_in(reviewer).get(project_url(tenant, "datasets-list")).status_code == 403
    foreign = make_dataset(other_tenant)
    response = signed_in(tenant.owner).get(
        project_url(tenant, "datasets-detail", dataset_pk=foreign.pk)
    )
    assert response.status_code == 404
    assert signed_in(tenant.owner).get(project_url(tenant, "datasets-list")).status_code == 200
    assert (
        dataset.name
        in signed_in(tenant.owner).get(project_url(tenant, "datasets-list")).content.decode()
    )


@pytest.mark.parametrize("role", ["owner", "reviewer"])
def test_the_explorer_offers_promotion_of_everything_matching_to_managers(tenant, role):
    make_trace(tenant, name="billing failure", status="error", external_id="bill-1")
    make_trace(tenant, name="greeting", status="ok", external_id="hello-1")
    user = tenant.owner
    if role == "reviewer":
        user = make_user("sme@example.com")
        add_member(tenant.organization, user, "reviewer")
    page = signed_in(user).get(project_url(tenant, "traces-explorer") + "?status=error").content
    link = (
        project_url(tenant, "datasets-promote-matching")
        + "?"
        + urlencode({"filter": "status=error"})
    )
    assert (link.replace("&", "&amp;").encode() in page) is (role == "owner")
    if role != "owner":
        return
    dataset = make_dataset(tenant)
    client = signed_in(user)
    confirm = client.get(link).content.decode()
    assert 'id="matched-count">1<' in confirm
    assert '<strong id="promote-filter">status is error</strong>' in confirm  # in words
    url = project_url(tenant, "datasets-promote-matching")
    response = client.post(url, {"filter": "status=error", "dataset": str(dataset.pk)})
    assert response.status_code == 302
    assert list(DatasetItem.objects.filter(dataset=dataset).values_list("key", flat=True)) == [
        "trace:bill-1"
    ]
    version = dataset.versions.get()
    assert version.message == "promote traces matching status is error"
