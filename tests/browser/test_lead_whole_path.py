"""A lead's whole path in Chromium, one page from start to end: filters the trace
explorer with the builder, sorts by a score, adds the matches to a queue, builds a
routing rule from the same filter and reads its preview, edits a rubric's levels and
reads the versions say so, and compares two experiments down to the regressions. Then
the auditor finds yesterday's changes by one reviewer in the admin's change log and
exports them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from datasets import services as dataset_services
from hitl import changelog, tenancy
from hitl.audit import Actor
from projects import services as project_services
from projects.models import Role
from review import services as review_services
from review.models import QueueItem, RoutingRule, ScoreConfig
from tests.browser.pages import shot, sign_in
from tests.datasets.helpers import import_rows, make_dataset
from tests.factories import add_member, make_tenant, make_user
from tests.review.helpers import make_config, make_queue, make_trace
from tests.traces.read_builders import make_score

pytestmark = pytest.mark.browser

# external id, status, faithfulness, duration (ms): the errors with a low score are the
# matches; sorted by the score, lowest first, they read refund-4, refund-0, refund-2.
TRACES = [
    ("refund-0", "error", 0.2, 900.0),
    ("refund-1", "ok", 0.1, 300.0),
    ("refund-2", "error", 0.4, 100.0),
    ("refund-3", "error", 0.8, 500.0),
    ("refund-4", "error", 0.05, 200.0),
    ("refund-5", "ok", 0.9, 50.0),
]


def _historical_models() -> list:
    return [
        getattr(model, model._meta.simple_history_manager_attribute).model
        for model in changelog.historied_models()
    ]


def _backdate(user, since: dt.datetime, when: dt.datetime) -> None:
    """Dates ``user``'s history rows written since ``since`` at ``when``."""
    for historical in _historical_models():
        historical.objects.filter(history_user_id=user.pk, history_date__gte=since).update(
            history_date=when
        )


@pytest.fixture
def world(transactional_db):
    tenant = make_tenant("Refunds")
    org_pk = tenant.organization.pk
    now = timezone.now()
    for n, (external_id, status, faithfulness, latency) in enumerate(TRACES):
        trace = make_trace(
            tenant,
            external_id=external_id,
            name=f"refund question {n}",
            status=status,
            input={"messages": [{"role": "user", "content": f"Where is my refund {n}?"}]},
            output={"answer": f"Refund answer {n}"},
            start_time=now - dt.timedelta(minutes=n + 1),
            latency_ms=latency,
        )
        make_score(trace, "faithfulness", faithfulness)
    config = make_config(tenant, name="Refund answer correct")
    queue = make_queue(tenant, configs=[config], reviewers=[tenant.reviewer], name="Refund errors")

    # Yesterday the reviewer reviewed an item of another queue, and the admin changed
    # the project; their history is dated so. Everything older is three days back.
    yesterday = now - dt.timedelta(days=1)
    for historical in _historical_models():
        historical.objects.filter(history_date__lt=now).update(
            history_date=now - dt.timedelta(days=3)
        )
    earlier = make_queue(tenant, configs=[config], reviewers=[tenant.reviewer], name="Dosage")
    seen = make_trace(tenant, external_id="dosage-1", name="dosage question")
    since = timezone.now()
    reviewer = Actor(user=tenant.reviewer, source="web")
    with tenancy.tenant_scope(org_pk):
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=earlier, trace_id=seen.pk
        )
        held = review_services.queue_claim_next(actor=reviewer, queue=earlier)
        review_services.assignment_submit(
            actor=reviewer, assignment_id=held.pk, values={str(config.pk): 0.25}
        )
        project_services.project_update(
            actor=Actor(user=tenant.admin), project=tenant.project, description="refunds bot"
        )
    _backdate(tenant.reviewer, since, yesterday)
    _backdate(tenant.admin, since, yesterday)

    # Two finished runs over one dataset; the reviewer's verdict sits on a candidate trace.
    dataset = make_dataset(tenant, name="Refund cases")
    import_rows(tenant, dataset, [{"id": k, "input": k} for k in ("r-1", "r-2", "r-3")])
    verdict_trace = make_trace(tenant, external_id="v2-trace-r-1", name="v2 on r-1")
    make_score(
        verdict_trace,
        "correct",
        source="human",
        data_type="categorical",
        label="wrong amount",
        author=tenant.reviewer,
    )
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(org_pk):
        for name, scores, outputs in (
            ("prompt v1", (1.0, 0.0, 1.0), ("Refund of $20 in 5 days.", "No.", "Same.")),
            ("prompt v2", (0.0, 1.0, 1.0), ("Refund of $200 in 5 days.", "Yes.", "Same.")),
        ):
            experiment = dataset_services.experiment_create(actor=owner, dataset=dataset, name=name)
            dataset_services.experiment_results_post(
                actor=owner,
                experiment=experiment,
                results=[
                    {
                        "id": key,
                        "output": output,
                        "scores": {"accuracy": score},
                        "trace_id": f"{name[-2:]}-trace-{key}",
                    }
                    for key, score, output in zip(
                        ("r-1", "r-2", "r-3"), scores, outputs, strict=True
                    )
                ],
            )
            dataset_services.experiment_finish(actor=owner, experiment=experiment)

    auditor = make_user("refunds-auditor@example.com", is_staff=True)
    add_member(tenant.organization, auditor, Role.AUDITOR)
    return tenant, config, queue, auditor


@pytest.mark.timeout(300)
def test_a_lead_walks_the_whole_path_and_the_auditor_finds_a_reviewers_changes(
    page, live_server, world
):
    tenant, config, queue, auditor = world
    org_pk = tenant.organization.pk
    base = f"{live_server.url}/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    sign_in(page, live_server, tenant.admin)

    # 1. The explorer, filtered with the builder: a low faithfulness, then the errors.
    page.goto(f"{base}/traces/")
    expect(page.locator("#filter-builder")).to_have_attribute("data-ready", "true")
    names = page.locator("#trace-table tbody tr td:nth-child(2)")
    expect(names).to_have_count(len(TRACES) + 2)  # with the review's and the verdict's
    row = page.locator("#conditions .condition").last
    row.locator(".cond-field").select_option("score")
    # The project's score names in a picker: the reviewers' and the automated ones.
    expect(row.locator("select.cond-key option")).to_have_text(
        ["Refund answer correct", "correct", "faithfulness"]
    )
    row.locator("select.cond-key").select_option("faithfulness")
    row.locator(".cond-op").select_option("lt")
    row.locator(".cond-value").fill("0.5")
    page.click("#add-condition")
    row = page.locator("#conditions .condition").last
    row.locator(".cond-field").select_option("status")
    row.locator("select.cond-value").select_option("error")
    page.click("#apply-filter")
    expect(page.locator("#filter-chips li")).to_have_text(
        ["faithfulness < 0.5 \u00d7", "status is error \u00d7"]
    )
    # Newest first by default, then sorted by the score, lowest first.
    expect(names).to_have_text(["refund question 0", "refund question 2", "refund question 4"])
    page.select_option("#sort-choice", "score:faithfulness")
    page.click("#apply-filter")
    expect(names).to_have_text(["refund question 4", "refund question 0", "refund question 2"])
    expect(page.locator("#match-count")).to_contain_text("3 matches")
    shot(page, "whole-1-explorer")

    # 2. Every match added to the queue, counted first.
    page.get_by_role("link", name="Add all matching to a queue…").click()
    expect(page.locator("#matched-count")).to_have_text("3")
    expect(page.locator("#bulk-chips li")).to_have_text(["faithfulness < 0.5", "status is error"])
    shot(page, "whole-2-bulk-add")
    page.select_option("#bulk-queue", label="Refund errors")
    page.click("#confirm-add")
    page.wait_for_url(re.compile(r".*/board/$"))
    expect(page.get_by_text("Added 3 of 3 matching traces")).to_be_visible()
    expect(page.locator("#col-pending .count")).to_have_text("3")
    with tenancy.tenant_scope(org_pk):
        queued = set(
            QueueItem.objects.filter(queue=queue).values_list("trace__external_id", flat=True)
        )
    assert queued == {"refund-0", "refund-2", "refund-4"}

    # 3. A routing rule from the same filter: its rows come filled, its preview names them.
    page.go_back()
    page.get_by_role("link", name="a routing rule for “Refund errors”").click()
    page.wait_for_url(re.compile(r".*/rules/\?filter="))
    conditions = page.locator("#conditions .condition")
    expect(conditions.first.locator(".cond-field")).to_have_value("score")
    expect(conditions.first.locator("select.cond-key")).to_have_value("faithfulness")
    expect(conditions.first.locator(".cond-value")).to_have_value("0.5")
    expect(conditions.nth(1).locator(".cond-field")).to_have_value("status")
    page.fill("#rule-name", "Unfaithful refund errors")
    summary = page.locator("#preview-summary")
    expect(summary).to_contain_text("3 of the")
    preview = page.locator("#preview-rows tbody tr")
    expect(preview).to_have_count(3)
    expect(page.locator("#rule-preview")).to_contain_text("Where is my refund 4?")
    shot(page, "whole-3-rule-preview")
    page.click("#save-rule")
    expect(page.get_by_text("Created the rule “Unfaithful refund errors”.")).to_be_visible()
    with tenancy.tenant_scope(org_pk):
        rule = RoutingRule.objects.get(name="Unfaithful refund errors")
    assert rule.filter_params == {"status": "error", "score": ["faithfulness<0.5"]}
    expect(page.locator(f"#rule-words-{rule.pk}")).to_contain_text("faithfulness < 0.5")

    # 4. The queue's question: a level added between the two, saved as a new version.
    page.goto(f"{base}/rubrics/")
    page.get_by_role("link", name="Refund answer correct").click()
    expect(page.locator("#l1-label")).to_have_value("Good")
    expect(page.locator("#l2-label")).to_have_value("")  # a blank row offered
    page.fill("#l2-label", "Partly")
    page.fill("#l2-definition", "Right amount, no date.")
    page.fill("#l2-examples", "A refund of $20.")
    page.click("#l2-up")
    expect(page.locator("#l1-label")).to_have_value("Partly")
    page.click("#save-rubric")
    versions = page.locator("#versions")
    expect(versions.locator("li").first).to_contain_text(
        "Level “Partly” added as level 2: Right amount, no date."
    )
    shot(page, "whole-4-rubric-versions")
    with tenancy.tenant_scope(org_pk):
        config = ScoreConfig.objects.get(pk=config.pk)
    assert [level["label"] for level in config.rubric] == ["Bad", "Partly", "Good"]

    # 5. The two runs compared, item by item, then only the regressions.
    page.click("nav.project-nav >> text=Experiments")
    page.click("#experiment-table >> text=prompt v2")
    baseline = page.locator("#compare-baseline option", has_text="prompt v1").inner_text()
    page.select_option("#compare-baseline", label=baseline)
    page.click("#compare-submit")
    counts = page.locator("#compare-counts")
    expect(counts).to_contain_text("1 regressed")
    expect(counts).to_contain_text("1 improved")
    regressed = page.locator("#compare-items > li.regressed")
    expect(regressed.locator(".key")).to_have_text("r-1")
    expect(regressed.locator(".compare-side").first.locator("del")).to_have_text("20")
    expect(regressed.locator(".compare-side").last.locator("ins")).to_have_text("200")
    expect(regressed.locator(".verdicts")).to_contain_text("wrong amount")
    page.click("#show-regressed")
    expect(page.locator("#compare-items > li")).to_have_count(1)
    shot(page, "whole-5-compare-regressions")

    # Today the reviewer takes an item of the new queue: not yesterday's, not exported.
    with tenancy.tenant_scope(org_pk):
        review_services.queue_claim_next(
            actor=Actor(user=tenant.reviewer, source="web"), queue=queue
        )

    # 6. The auditor: yesterday's changes by the reviewer, found and exported.
    page.context.clear_cookies()
    sign_in(page, live_server, auditor)
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Change log").first.click()
    page.wait_for_url(lambda url: "/admin/changelog/" in url)
    yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    page.get_by_label("Person").fill(tenant.reviewer.email)
    page.get_by_label("From", exact=True).fill(yesterday)
    page.get_by_label("To", exact=True).fill(yesterday)
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#changelog tbody tr")
    expect(rows.first).to_contain_text(tenant.reviewer.email)
    shown = rows.count()
    assert shown >= 1
    for n in range(shown):
        expect(rows.nth(n)).to_contain_text(tenant.reviewer.email)
    # Each row says what changed: the review's answers among them.
    review_row = rows.filter(has_text=re.compile(r"annotation #\d+:"))
    expect(review_row).to_have_count(1)
    expect(review_row).to_contain_text("values: Refund answer correct: 0.25")
    expect(page.locator("#changelog")).not_to_contain_text("refunds bot")  # the admin's
    shot(page, "whole-6-changelog")

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    with open(download.value.path(), encoding="utf-8") as exported_file:
        exported = list(csv.DictReader(io.StringIO(exported_file.read())))
    assert len(exported) == shown
    assert {row["user"] for row in exported} == {tenant.reviewer.email}
    assert all(row["when"].startswith(yesterday) for row in exported), exported
    answers = [row for row in exported if "annotation" in row["model"].lower()]
    assert len(answers) == 1, exported
    assert "values: Refund answer correct: 0.25" in answers[0]["changes"]
    with page.expect_download() as download:
        page.get_by_role("link", name="JSON").click()
    with open(download.value.path(), encoding="utf-8") as exported_file:
        as_json = json.load(exported_file)
    assert len(as_json) == shown
