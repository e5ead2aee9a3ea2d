"""The admin's change log: every history row of the reader's organizations in one list,
filtered, worded like the object history pages, exported as CSV or JSON."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re

import pytest
from django.test import Client
from django.utils import timezone

from hitl import changelog
from hitl.audit import Actor
from hitl.tenancy import all_tenants_scope_for_superuser, tenant_scope
from projects import services
from projects.models import Project, Role
from tests.factories import add_member, make_user

FORMULA = "=cmd|' /C calc'!A0"


def _staff_auditor(tenant) -> Client:
    auditor = make_user(f"staff-{tenant.organization.slug}@example.com", is_staff=True)
    add_member(tenant.organization, auditor, Role.AUDITOR)
    client = Client()
    client.force_login(auditor)
    return client


def _change(tenant, user, *, days_ago: int, **fields) -> int:
    """Changes the tenant's project as ``user``, dated ``days_ago``; its history_id."""
    with tenant_scope(tenant.organization.pk):
        services.project_update(actor=Actor(user=user), project=tenant.project, **fields)
    historical = Project.history.model
    row = historical.objects.filter(id=tenant.project.pk).latest("history_date", "history_id")
    when = timezone.now() - dt.timedelta(days=days_ago)
    historical.objects.filter(history_id=row.history_id).update(history_date=when)
    return row.history_id


@pytest.fixture
def changes(tenant, other_tenant):
    # The projects were created three days ago, so each change has a version before it.
    Project.history.model.objects.update(history_date=timezone.now() - dt.timedelta(days=3))
    return {
        "wanted": _change(tenant, tenant.reviewer, days_ago=1, name=FORMULA),
        "today": _change(tenant, tenant.reviewer, days_ago=0, description="today"),
        "by admin": _change(tenant, tenant.admin, days_ago=1, description="by the admin"),
        "other org": _change(other_tenant, other_tenant.reviewer, days_ago=1, name="Globex secret"),
    }


def _yesterday() -> str:
    return (timezone.localdate() - dt.timedelta(days=1)).isoformat()


def test_auditor_finds_yesterdays_changes_of_one_reviewer_and_exports_them(
    tenant, other_tenant, changes
):
    client = _staff_auditor(tenant)
    query = {"person": tenant.reviewer.pk, "since": _yesterday(), "until": _yesterday()}
    page = client.get("/admin/changelog/", query)
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count('<tr class="row') == 1
    assert f"{tenant.reviewer.email} (web)" in body
    changed = [html.unescape(line) for line in re.findall(r"<li>(.*?)</li>", body, re.S)]
    assert f"name: 'Acme assistant' → {FORMULA!r}" in changed, changed
    assert "today" not in body and "by the admin" not in body

    exported = client.get("/admin/changelog/", {**query, "export": "csv"})
    assert exported.status_code == 200 and exported["Content-Type"] == "text/csv"
    assert "attachment" in exported["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert [int(row["history_id"]) for row in rows] == [changes["wanted"]]
    assert rows[0]["object"] == "'" + FORMULA  # neutralised: shows as text, runs nothing
    assert rows[0]["user"] == tenant.reviewer.email and rows[0]["action"] == "changed"

    as_json = json.loads(client.get("/admin/changelog/", {**query, "export": "json"}).content)
    assert [row["history_id"] for row in as_json] == [changes["wanted"]]
    assert as_json[0]["object"] == FORMULA  # JSON holds the value as it is
    assert {"field": "name", "old": "'Acme assistant'", "new": repr(FORMULA)} in as_json[0][
        "changes"
    ]


def test_another_organizations_rows_never_appear(tenant, other_tenant, changes):
    client = _staff_auditor(tenant)
    body = client.get("/admin/changelog/").content.decode()
    assert "Globex secret" not in body and other_tenant.reviewer.email not in body
    exported = json.loads(client.get("/admin/changelog/", {"export": "json"}).content)
    ids = {row["history_id"] for row in exported if row["model"] == "projects.project"}
    assert changes["wanted"] in ids and changes["other org"] not in ids
    assert all(other_tenant.organization.slug not in json.dumps(row) for row in exported)
    # Asking for the other organization's person or object finds nothing.
    foreign_person = client.get("/admin/changelog/", {"person": other_tenant.reviewer.pk})
    assert foreign_person.status_code == 400
    foreign_object = client.get(
        "/admin/changelog/", {"model": "projects.project", "object_id": other_tenant.project.pk}
    )
    assert foreign_object.status_code == 200 and "Globex secret" not in foreign_object.text

    root = make_user("root-changelog@example.com", is_staff=True)
    root.is_superuser = True
    root.save()
    superuser = Client()
    superuser.force_login(root)
    everything = superuser.get("/admin/changelog/", {"since": _yesterday()})
    assert everything.status_code == 200
    assert "Globex secret" in everything.text and "by the admin" in everything.text


def test_staff_without_an_organization_is_refused(db):
    client = Client()
    client.force_login(make_user("staff-nowhere@example.com", is_staff=True))
    assert client.get("/admin/changelog/").status_code == 403


@pytest.mark.parametrize(
    "query",
    [
        {"person": "\x00"},
        {"person": "99999999999999999999999"},
        {"api_key": "ab\x00cd"},
        {"object_id": "99999999999999999999999"},
        {"object_id": "-1"},
        {"since": "not a date"},
        {"until": "2026-02-30"},
        {"since": "2026-12-07", "until": "2026-12-01"},
        {"model": "projects.nothing"},
        {"action": "x"},
        {"cursor": "garbage"},
        {"cursor": "2026-12-07T00:00:00|projects.project|99999999999999999999999"},
        {"export": "xml"},
        {"since": "nope", "export": "csv"},
    ],
)
def test_bad_filters_are_a_400_not_a_crash(tenant, query):
    client = _staff_auditor(tenant)
    assert client.get("/admin/changelog/", query).status_code == 400


def test_keyset_pages_list_every_row_once_in_order(tenant, other_tenant, changes):
    with all_tenants_scope_for_superuser():
        whole = changelog.changelog_page({}, None, size=1000)
        paged, cursor = [], None
        while True:
            page = changelog.changelog_page({"cursor": cursor}, None, size=3)
            paged += page.rows
            cursor = page.next_cursor
            if cursor is None:
                break
    key = [(row["model_label"], row["history_id"]) for row in whole.rows]
    assert [(row["model_label"], row["history_id"]) for row in paged] == key
    assert len(key) == len(set(key)) > 3
    dates = [row["history_date"] for row in whole.rows]
    assert dates == sorted(dates, reverse=True)


def test_index_groups_models_by_capability_without_historical_models(tenant):
    client = _staff_auditor(tenant)
    index = client.get("/admin/").content.decode()
    assert "Change log" in index and "/admin/changelog/" in index
    assert "Historical" not in index and "historical" not in index
    for group in ("People and access", "Review", "Quality", "Notifications"):
        assert group in index
    assert "Deliveries" in index and "Gold accuracies" in index and ">Feedback<" in index
    assert not {"Deliverys", "accuracys", "Feedbacks"} & set(re.findall(r"\w+", index))
