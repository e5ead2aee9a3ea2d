"""The admin's sign-in form is throttled by the site's login limiter (allauth's rate limits
on the Redis cache): failures on /accounts/login/ and /admin/login/ count together."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.factories import PASSWORD, make_user

TOO_MANY = b"Too many failed login attempts"
ADMIN_LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def staff(db):
    return make_user("staff@acme.example.com", is_staff=True)


def admin_login(client: Client, login: str, password: str):
    return client.post(ADMIN_LOGIN, {"username": login, "password": password})


def site_login(client: Client, email: str, password: str):
    return client.post("/accounts/login/", {"login": email, "password": password})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_wrong_passwords_then_the_right_one_is_refused_until_the_limit_allows(staff):
    client = Client()
    for _ in range(8):
        response = admin_login(client, staff.email, "wrong-password")
        assert response.status_code == 200
        assert not signed_in(client)
    response = admin_login(client, staff.email, PASSWORD)
    assert response.status_code == 200
    assert TOO_MANY in response.content
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302


def test_a_few_failures_then_the_right_password_signs_in(staff):
    client = Client()
    for _ in range(3):
        response = admin_login(client, staff.email, "wrong-password")
        assert b"Please enter the correct" in response.content
    response = admin_login(client, staff.email, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert signed_in(client)
    assert client.get("/admin/").status_code == 200


def test_failures_on_the_site_lock_the_admin_and_the_other_way(staff, db):
    site = Client()
    for _ in range(5):
        site_login(site, staff.email, "wrong-password")
    admin = Client()
    response = admin_login(admin, staff.email, PASSWORD)
    assert TOO_MANY in response.content
    assert not signed_in(admin)

    other = make_user("other-staff@acme.example.com", is_staff=True)
    for _ in range(5):
        admin_login(admin, other.email, "wrong-password")
    response = site_login(site, other.email, PASSWORD)
    assert TOO_MANY in response.content
    assert not signed_in(site)


def test_the_username_is_keyed_on_the_account_email(db):
    user = get_user_model().objects.create_user(
        username="staffer", email="staffer@acme.example.com", password=PASSWORD, is_staff=True
    )
    for _ in range(5):
        site_login(Client(), user.email, "wrong-password")
    client = Client()
    response = admin_login(client, "staffer", PASSWORD)
    assert TOO_MANY in response.content
    assert not signed_in(client)


def test_the_right_password_is_let_in_once_the_window_has_passed(staff, settings):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,3/2s/key"}
    client = Client()
    for _ in range(3):
        admin_login(client, staff.email, "wrong-password")
    assert TOO_MANY in admin_login(client, staff.email, PASSWORD).content
    time.sleep(2.1)
    response = admin_login(client, staff.email, PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)


def test_every_admin_login_post_counts_against_the_per_ip_rate(staff, settings):
    settings.ACCOUNT_RATE_LIMITS = {"login": "2/m/ip"}
    client = Client()
    assert client.get(ADMIN_LOGIN).status_code == 200
    assert admin_login(client, staff.email, "wrong-password").status_code == 200
    site_login(client, staff.email, "wrong-password")
    response = admin_login(client, staff.email, PASSWORD)
    assert response.status_code == 429
    assert not signed_in(client)
    assert client.get(ADMIN_LOGIN).status_code == 200
