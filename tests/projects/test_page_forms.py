"""Every form of the organization pages walked with what people (and scripts) send
wrong: NUL, bytes that are no UTF-8, numbers past 64 bits, words for numbers, unknown
choices, another organization's project, text too long, fields left out. Each answers a
4xx with the field's reason on the page, and writes nothing; none answers a 5xx.

The forms are also checked without the middleware (which refuses NUL first), and the
page modules are checked for hand reads of ``request.POST``/``request.GET``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django import forms
from django.test import Client
from django.urls import reverse

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from projects import forms as project_forms
from projects import services
from projects.models import (
    ApiKey,
    Destination,
    Invitation,
    Membership,
    NotificationPreference,
    QueueAlert,
)
from projects.notifications import catalogue
from projects.notifications.destinations import destination_create
from tests.factories import Tenant
from tests.page_input import BAD_UTF8, HAND_READ, HUGE, NUL, UNSTORABLE, messages_of, send
from tests.review.helpers import make_queue

HOOK = "http://127.0.0.1:9/hook"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Walk:
    """One form: where it posts, a valid base, the wrong values of each field, how the
    page shows a field's reason, and what must stay unwritten."""

    url: Callable[[Tenant, dict], str]
    valid: Callable[[Tenant, Tenant, dict], dict[str, Any]]
    wrong: Callable[[Tenant, Tenant, dict], dict[str, list[Any]]]
    shows: Callable[[Any, str], bool]
    state: Callable[[Tenant, dict], Any]
    method: str = "post"
    missing: tuple[str, ...] = ()
    expected: tuple[int, ...] = (400, 422)
    rows: dict = field(default_factory=dict)


def on_form(key: str) -> Callable[[Any, str], bool]:
    return lambda response, name: name in response.context[key].errors


def in_messages(labels: dict[str, str]) -> Callable[[Any, str], bool]:
    return lambda response, name: f"{labels.get(name, name.capitalize())}:" in messages_of(response)


def org_url(name: str, **kwargs: Any) -> Callable[[Tenant, dict], str]:
    return lambda t, rows: reverse(
        name, kwargs={"org_slug": t.organization.slug} | {k: rows[v] for k, v in kwargs.items()}
    )


def scoped(t: Tenant, read: Callable[[], Any]) -> Any:
    with tenant_scope(t.organization.pk):
        return read()


NOT_A_PROJECT = ["abc", HUGE, "-1", "1.5"]

WALKS: dict[str, Walk] = {
    "invite": Walk(
        url=org_url("settings-members"),
        valid=lambda t, o, r: {"email": "new@example.com", "role": "reviewer"},
        wrong=lambda t, o, r: {
            "email": ["not-an-address", "x" * 300 + "@example.com"],
            "role": ["boss", ""],
            "projects": [*NOT_A_PROJECT, str(o.project.pk)],
        },
        missing=("email",),
        shows=on_form("form"),
        state=lambda t, r: scoped(t, lambda: Invitation.objects.count()),
    ),
    "member": Walk(
        url=org_url("settings-member", membership_pk="reviewer_membership"),
        valid=lambda t, o, r: {"role": "viewer"},
        wrong=lambda t, o, r: {
            "role": ["boss"],
            "projects": [*NOT_A_PROJECT, str(o.project.pk)],
        },
        shows=in_messages({}),
        state=lambda t, r: scoped(
            t, lambda: Membership.objects.get(pk=r["reviewer_membership"]).role
        ),
        expected=(400,),
    ),
    "invitation": Walk(
        url=org_url("settings-invitation", invitation_pk="invitation"),
        valid=lambda t, o, r: {"action": "revoke", "confirm": "1"},
        wrong=lambda t, o, r: {"action": ["explode", "REVOKE"]},
        shows=in_messages({}),
        state=lambda t, r: scoped(t, lambda: Invitation.objects.get(pk=r["invitation"]).status),
        expected=(400,),
    ),
    "api key": Walk(
        url=org_url("settings-api-keys"),
        valid=lambda t, o, r: {"name": "ci", "project": str(t.project.pk), "scopes": ["read"]},
        wrong=lambda t, o, r: {
            "name": ["x" * 201, "   "],
            "project": [*NOT_A_PROJECT, str(o.project.pk)],
            "scopes": ["root", HUGE],
        },
        missing=("name", "project"),
        shows=on_form("form"),
        state=lambda t, r: scoped(t, lambda: ApiKey.objects.count()),
    ),
    "new destination": Walk(
        url=org_url("settings-destinations"),
        valid=lambda t, o, r: {
            "name": "hook",
            "kind": "webhook",
            "url": HOOK,
            "event_types": [catalogue.API_KEY_CREATED],
        },
        wrong=lambda t, o, r: {
            "name": ["x" * 201],
            "kind": ["pigeon"],
            "url": ["http://" + "x" * 2000],
            "event_types": ["no.such.event"],
            "project": [*NOT_A_PROJECT, str(o.project.pk)],
            "filter_queue_id": ["abc", HUGE, "-1", "1e400", str(r["other_queue"])],
            "filter_score_name": ["x" * 201],
            "slack_bot_token": ["x" * 201],
        },
        missing=("name", "kind"),
        shows=on_form("form"),
        state=lambda t, r: scoped(t, lambda: Destination.objects.count()),
    ),
    "destination": Walk(
        url=org_url("settings-destination", destination_pk="destination"),
        valid=lambda t, o, r: {"action": "save", "name": "renamed"},
        wrong=lambda t, o, r: {
            "action": ["explode"],
            "name": ["x" * 201],
            "event_types": ["no.such.event"],
            "project": [*NOT_A_PROJECT, str(o.project.pk)],
            "filter_queue_id": ["abc", HUGE, "-1", str(r["other_queue"])],
        },
        missing=("name",),
        shows=lambda response, name: (
            "Action:" in messages_of(response)
            if name == "action"
            else name in response.context["form"].errors
        ),
        state=lambda t, r: scoped(t, lambda: Destination.objects.get(pk=r["destination"]).name),
    ),
    "queue alert": Walk(
        url=org_url("settings-queue-alerts"),
        valid=lambda t, o, r: {"queue_id": str(r["queue"]), "backlog_threshold": "5"},
        wrong=lambda t, o, r: {
            "queue_id": ["abc", HUGE, "-1", "1e400", str(r["other_queue"])],
            "backlog_threshold": ["0", "abc", HUGE, str(2**31)],
            "remove": ["abc", HUGE],
        },
        missing=("queue_id", "backlog_threshold"),
        shows=on_form("alert_form"),
        state=lambda t, r: scoped(t, lambda: QueueAlert.objects.count()),
    ),
    "preferences": Walk(
        url=org_url("notification-preferences-page"),
        valid=lambda t, o, r: {"mentions": "email", "assignments": "off"},
        wrong=lambda t, o, r: {
            "mentions": ["pigeon", ""],
            "assignments": ["pigeon"],
            "slack_member_id": ["x" * 33, "not an id"],
        },
        missing=("mentions", "assignments"),
        shows=on_form("form"),
        state=lambda t, r: scoped(t, lambda: NotificationPreference.objects.count()),
    ),
    "switch organization": Walk(
        url=lambda t, r: reverse("organization-switch"),
        valid=lambda t, o, r: {"organization": t.organization.slug},
        wrong=lambda t, o, r: {"organization": [o.organization.slug, "x" * 101, "nope"]},
        missing=("organization",),
        shows=in_messages({}),
        state=lambda t, r: None,
        expected=(400,),
    ),
}


def rows_for(tenant: Tenant, settings, other: Tenant | None = None) -> dict[str, Any]:
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = ["127.0.0.1:9"]
    actor = Actor(user=tenant.owner)
    other_queue = make_queue(other).pk if other is not None else None
    with tenant_scope(tenant.organization.pk):
        owner = Membership.objects.get(user=tenant.owner)
        invitation, _token = services.invitation_create(
            actor=actor, acting_membership=owner, email="invited@example.com", role="reviewer"
        )
        destination, _secret = destination_create(
            actor=actor,
            name="hook",
            kind="webhook",
            url=HOOK,
            event_types=[catalogue.API_KEY_CREATED],
        )
        return {
            "reviewer_membership": Membership.objects.get(user=tenant.reviewer).pk,
            "invitation": invitation.pk,
            "destination": destination.pk,
            "queue": make_queue(tenant).pk,
            "other_queue": other_queue,
        }


@pytest.mark.parametrize("name", list(WALKS))
def test_each_form_refuses_what_is_wrong_beside_the_field(name, tenant, other_tenant, settings):
    walk = WALKS[name]
    rows = rows_for(tenant, settings, other_tenant)
    client = Client()
    client.force_login(tenant.owner)
    url = walk.url(tenant, rows)
    before = walk.state(tenant, rows)
    valid = walk.valid(tenant, other_tenant, rows)
    cases = [
        (field_name, value, True)
        for field_name, values in walk.wrong(tenant, other_tenant, rows).items()
        for value in values
    ]
    every_field = sorted({*valid, *walk.wrong(tenant, other_tenant, rows)})
    cases += [(field_name, NUL, False) for field_name in every_field]
    for field_name, value, shown in cases:
        response = send(client, walk.method, url, {**valid, field_name: value})
        what = f"{name}: {field_name}={value!r}"
        assert response.status_code in ((400,) if value == NUL else walk.expected), what
        if shown:
            assert walk.shows(response, field_name), what
    for field_name in walk.missing:
        left = {k: v for k, v in valid.items() if k != field_name}
        response = send(client, walk.method, url, left)
        assert response.status_code in walk.expected, f"{name}: without {field_name}"
        assert walk.shows(response, field_name), f"{name}: without {field_name}"
    assert walk.state(tenant, rows) == before, f"{name}: something was written"
    # Bytes that are no UTF-8 decode as U+FFFD: text that may well be valid, never a 5xx.
    for field_name in every_field:
        response = send(client, walk.method, url, {**valid, field_name: BAD_UTF8})
        assert response.status_code < 500, f"{name}: {field_name} not UTF-8"


def test_a_refused_field_is_marked_and_what_was_typed_kept(tenant):
    client = Client()
    client.force_login(tenant.admin)
    url = reverse("settings-api-keys", kwargs={"org_slug": tenant.organization.slug})
    response = client.post(url, {"name": "nightly", "project": "abc", "scopes": ["read"]})
    page = response.content.decode()
    assert response.status_code == 422
    assert 'id="key-project-error"' in page and 'aria-describedby="key-project-error"' in page
    assert 'value="nightly"' in page
    assert re.search(r'value="read" checked', page) and not re.search(
        r'value="ingest" checked', page
    )


def test_the_delivery_log_reads_any_page_number(tenant, settings):
    rows = rows_for(tenant, settings)
    client = Client()
    client.force_login(tenant.owner)
    url = reverse(
        "settings-destination",
        kwargs={"org_slug": tenant.organization.slug, "destination_pk": rows["destination"]},
    )
    for page in ("abc", HUGE, "-1", "0", "1e400", ""):
        response = client.get(url, {"page": page})
        assert response.status_code == 200, page
        assert response.context["log"].number == 1, page


@pytest.mark.parametrize(
    "form_class",
    [
        project_forms.InvitationForm,
        project_forms.ApiKeyForm,
        project_forms.DestinationForm,
        project_forms.NotificationPreferenceForm,
    ],
)
@pytest.mark.parametrize("bad", UNSTORABLE)
def test_the_forms_refuse_unstorable_text_without_the_middleware(form_class, bad, tenant):
    with tenant_scope(tenant.organization.pk):
        form = form_class(data={})
        text_fields = [n for n, f in form.fields.items() if isinstance(f, forms.CharField)]
        assert text_fields
        form = form_class(data={name: bad for name in text_fields})
        assert not form.is_valid()
        for name in text_fields:
            assert name in form.errors, name


PAGE_MODULES = ["projects/views.py", "projects/notifications/views.py"]


@pytest.mark.parametrize("module", PAGE_MODULES)
def test_pages_read_input_only_through_forms(module):
    source = (ROOT / module).read_text()
    assert not HAND_READ.findall(source), f"{module} reads request input by hand"
