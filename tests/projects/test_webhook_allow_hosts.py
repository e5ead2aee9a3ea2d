"""Local webhook receivers are allowed one host:port at a time (``HITL_WEBHOOKS_ALLOW_HOSTS``):
the listed receiver gets its deliveries, another port on the same loopback address is
refused at save (API and page) and again at send, with an error that says why."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from projects.models import DeliveryState, Destination
from projects.notifications import catalogue, ssrf
from tests.page_clients import signed_in
from tests.projects.test_notifications import (
    Receiver,
    attempts,
    create_key,
    deliveries,
    make_destination,
    run_outbox,
)


@pytest.fixture
def listed() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def unlisted() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def allow(settings, listed):
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = [f"127.0.0.1:{listed.port}"]


def _destinations(tenant) -> list[Destination]:
    from hitl.tenancy import tenant_scope

    with tenant_scope(tenant.organization.pk):
        return list(Destination.objects.all())


def test_the_listed_receiver_gets_its_delivery(allow, listed, tenant):
    make_destination(tenant, listed.url())
    create_key(tenant)
    run_outbox()
    (request,) = listed.requests
    assert request.headers["webhook-id"]
    assert deliveries(tenant)[0].state == DeliveryState.SUCCEEDED


def test_another_loopback_port_is_refused_by_the_api(allow, unlisted, tenant, client_for):
    response = client_for(tenant.owner).post(
        f"/api/orgs/{tenant.organization.slug}/destinations/",
        {
            "name": "mail catcher",
            "kind": "webhook",
            "url": unlisted.url(),
            "event_types": [catalogue.API_KEY_CREATED],
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "unsafe_destination"
    message = json.dumps(error["details"])
    assert "loopback" in message
    assert f"127.0.0.1:{unlisted.port} is not a local receiver this server allows" in message
    assert _destinations(tenant) == []


def test_another_loopback_port_is_refused_by_the_page_form(allow, unlisted, listed, tenant):
    client = signed_in(tenant.owner)
    url = reverse("settings-destinations", kwargs={"org_slug": tenant.organization.slug})
    form = {"name": "hook", "kind": "webhook", "event_types": [catalogue.API_KEY_CREATED]}
    refused = client.post(url, {**form, "url": unlisted.url()})
    assert refused.status_code == 422
    assert "is not a local receiver this server allows" in refused.content.decode()
    assert _destinations(tenant) == []

    accepted = client.post(url, {**form, "url": listed.url()})
    assert accepted.status_code == 200
    (destination,) = _destinations(tenant)
    assert destination.url == listed.url()


def test_the_same_receiver_under_another_spelling_is_refused(allow, listed, tenant):
    for url in (
        f"http://localhost:{listed.port}/hooks",
        f"http://127.1:{listed.port}/hooks",
        f"http://2130706433:{listed.port}/hooks",
        f"http://[::ffff:127.0.0.1]:{listed.port}/hooks",
    ):
        with pytest.raises(ssrf.UnsafeDestination, match="not a local receiver"):
            make_destination(tenant, url)


def test_a_listed_host_may_not_reach_metadata_or_link_local(settings):
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = ["169.254.169.254:80", "169.254.1.1:80", "10.1.2.3:80"]
    with pytest.raises(ssrf.UnsafeDestination, match="metadata"):
        ssrf.check_url("http://169.254.169.254/latest/")
    with pytest.raises(ssrf.UnsafeDestination, match="link-local"):
        ssrf.check_url("http://169.254.1.1/")
    # A listed private address is a local receiver (a staging stack's service).
    assert ssrf.check_url("http://10.1.2.3/hook").address == "10.1.2.3"
    with pytest.raises(ssrf.UnsafeDestination, match="not a local receiver"):
        ssrf.check_url("http://10.1.2.3:81/hook")


def test_plain_http_to_slack_only_for_a_listed_receiver(allow, listed, unlisted):
    assert ssrf.check_url(listed.url("/services/T/B/x"), kind="slack").port == listed.port
    with pytest.raises(ssrf.UnsafeDestination, match="https://"):
        ssrf.check_url(unlisted.url("/services/T/B/x"), kind="slack")


def test_removed_from_the_list_refused_at_send(allow, listed, tenant, settings):
    make_destination(tenant, listed.url())
    create_key(tenant)
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = [f"127.0.0.1:{listed.port + 1}"]
    run_outbox()
    (attempt,) = attempts(tenant)
    assert attempt.status_code is None
    assert "not a local receiver this server allows" in attempt.error
    assert listed.requests == []


def test_the_setting_is_read_from_a_comma_separated_string(settings):
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = " 127.0.0.1:8025, LocalHost:9000,[::1]:7000 ,"
    assert ssrf.allowed_local_receivers() == {
        ("127.0.0.1", 8025),
        ("localhost", 9000),
        ("::1", 7000),
    }


@pytest.mark.parametrize("entry", ["127.0.0.1", "localhost:", "http://x:1", "a:b", "x:1/path"])
def test_an_entry_without_a_port_is_a_configuration_error(settings, entry):
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = [entry]
    with pytest.raises(ImproperlyConfigured, match="host:port"):
        ssrf.allowed_local_receivers()
