"""The change log's person picker: an email field that finds people as it is typed
(``admin:changelog-people``), among the reader's organizations only; no list of every
user on the page, the superuser's included."""

from __future__ import annotations

from django.test import Client

from tests.factories import make_user
from tests.test_admin_changelog import _staff_auditor


def test_the_picker_finds_people_of_the_auditors_organizations_only(tenant, other_tenant):
    client = _staff_auditor(tenant)
    found = client.get("/admin/changelog/people/", {"q": tenant.reviewer.email[:5]})
    assert found.status_code == 200
    assert tenant.reviewer.email in found.json()["people"]
    everyone = client.get("/admin/changelog/people/", {"q": "@"}).json()["people"]
    assert other_tenant.reviewer.email not in everyone and tenant.admin.email in everyone
    assert client.get("/admin/changelog/people/", {"q": "\x00"}).status_code == 400
    assert client.get("/admin/changelog/people/").json() == {"people": []}

    page = client.get("/admin/changelog/")
    body = page.content.decode()
    assert 'list="changelog-people"' in body and '<select name="person"' not in body
    assert '<datalist id="changelog-people"></datalist>' in body  # filled as one types

    by_email = client.get("/admin/changelog/", {"person": tenant.reviewer.email.upper()})
    assert by_email.status_code == 200
    foreign = client.get("/admin/changelog/", {"person": other_tenant.reviewer.email})
    assert foreign.status_code == 400
    assert "No one with that email in your organizations." in foreign.content.decode()

    nowhere = Client()
    nowhere.force_login(make_user("staff-nowhere-people@example.com", is_staff=True))
    assert nowhere.get("/admin/changelog/people/", {"q": "a"}).status_code == 403


def test_the_superusers_page_lists_no_one(tenant, other_tenant):
    root = make_user("root-people@example.com", is_staff=True)
    root.is_superuser = True
    root.save()
    client = Client()
    client.force_login(root)
    body = client.get("/admin/changelog/").content.decode()
    assert '<select name="person"' not in body
    assert '<datalist id="changelog-people"></datalist>' in body
    found = client.get("/admin/changelog/people/", {"q": other_tenant.reviewer.email})
    assert found.json() == {"people": [other_tenant.reviewer.email]}
