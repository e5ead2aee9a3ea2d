"""The trace pages' forms walked with what people (and scripts) send wrong: the
explorer's page parameters (columns, cursor, saved view), saving a view and the
retention. Each answers with the field's reason (the explorer 200 with its errors, the
others 400), writes nothing, and never a 5xx. The filter's own parameters are the
FilterSet's (tests/traces/test_explorer_pages.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from hitl.tenancy import tenant_scope
from tests.page_input import BAD_UTF8, HAND_READ, HUGE, NUL, UNSTORABLE, messages_of, send
from tests.review.helpers import make_trace
from traces.forms import SavedViewForm, TraceRetentionForm
from traces.models import SavedView, TraceRetention
from traces.views import COLUMNS

ROOT = Path(__file__).resolve().parents[2]


def _url(tenant, name: str) -> str:
    return reverse(
        name, kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug}
    )


@pytest.fixture
def admin(tenant) -> Client:
    make_trace(tenant, name="billing failure", status="error")
    client = Client()
    client.force_login(tenant.admin)
    return client


def test_the_explorer_refuses_a_page_parameter_beside_the_filter(tenant, admin):
    url = _url(tenant, "traces-explorer")
    wrong = {
        "after": ["garbage", "2026-01-01T00:00:00|" + HUGE, "2026-13-45T99:00:00|1", "x" * 101],
        "view": ["abc", HUGE, "0"],
    }
    for name, values in wrong.items():
        for value in values:
            response = send(admin, "get", url, {name: value})
            assert response.status_code == 200, (name, value)
            assert response.context["has_errors"], (name, value)
            assert name in response.context["unknown_errors"], (name, value)
            assert "billing failure" not in response.content.decode()
    # An unknown column is left out: a bookmark naming one still opens.
    response = send(admin, "get", url, {"col": ["name", "no_such_column"]})
    assert response.status_code == 200 and not response.context["has_errors"]
    assert response.context["columns"] == [("name", "Name")]
    for name in ("after", "view", "col"):
        assert send(admin, "get", url, {name: NUL}).status_code == 400
        assert send(admin, "get", url, {name: BAD_UTF8}).status_code < 500


def test_saving_a_view_refuses_what_is_wrong_and_saves_nothing(tenant, admin):
    url = _url(tenant, "traces-saved-view-create")
    valid = {"name": "Failures", "query": "status=error", "col": ["name"]}
    wrong = {
        "name": ["", "   ", "x" * 201],
        "query": ["name_contains=%00", "status=error&" + "x" * 8000],
        "col": ["no_such_column"],
    }
    labels = {"name": "Name:", "query": "Filter:", "col": "Columns:"}
    for name, values in wrong.items():
        for value in values:
            response = send(admin, "post", url, {**valid, name: value})
            assert response.status_code == 400, (name, value)
            said = messages_of(response)
            assert "The view was not saved" in said and labels[name] in said, (name, value)
    # A filter the FilterSet refuses: the explorer of that filter, its field marked.
    response = send(admin, "post", url, {**valid, "query": "status=bogus"})
    assert response.status_code == 400 and response.context["has_errors"]
    assert any(c["errors"] for c in response.context["conditions"] if c["param"] == "status")
    for name in valid:
        assert send(admin, "post", url, {**valid, name: NUL}).status_code == 400
    with tenant_scope(tenant.organization.pk):
        assert not SavedView.objects.exists()


def test_the_retention_refuses_what_is_no_number_of_days(tenant, admin):
    url = _url(tenant, "traces-retention")
    wrong = {"days": ["soon", "-3", "1.5", HUGE, "1e400", "", "٣", "36501"], "mode": ["forever"]}
    for name, values in wrong.items():
        for value in values:
            data = {"mode": "days", "days": "30", name: value}
            response = send(admin, "post", url, data)
            assert response.status_code == 400, (name, value)
            assert response.context["error"], (name, value)
            assert 'id="retention-error"' in response.content.decode()
    assert send(admin, "post", url, {"mode": "days"}).status_code == 400
    for name in ("mode", "days"):
        assert send(admin, "post", url, {"mode": "days", "days": "3", name: NUL}).status_code == 400
    with tenant_scope(tenant.organization.pk):
        assert not TraceRetention.objects.exists()
    # Following the default reads no days at all, whatever was typed.
    assert send(admin, "post", url, {"mode": "default", "days": "soon"}).status_code == 302


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_the_forms_refuse_unstorable_text_without_the_middleware(bad):
    form = SavedViewForm(data={"name": bad, "query": f"q={bad}"}, columns=COLUMNS.items())
    assert not form.is_valid() and {"name", "query"} <= set(form.errors)
    form = TraceRetentionForm(data={"mode": "days", "days": bad})
    assert not form.is_valid() and "days" in form.errors


@pytest.mark.parametrize("module", ["traces/views.py", "traces/retention_views.py"])
def test_pages_read_input_only_through_forms(module):
    assert not HAND_READ.findall((ROOT / module).read_text()), module
