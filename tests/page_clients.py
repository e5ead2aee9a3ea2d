"""Signing in and addressing project pages from tests that use Django's test client."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse


def signed_in(user: Any) -> Client:
    """A test client with ``user``'s session."""
    client = Client()
    client.force_login(user)
    return client


def project_url(tenant: Any, name: str, **kwargs: Any) -> str:
    """The URL of the page ``name`` in ``tenant``'s project."""
    return reverse(
        name,
        kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug} | kwargs,
    )
