"""Two requests creating or renaming to the same queue or score config name at once:
one wins, the other answers 409 naming the field (never 500)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hitl.tenancy import tenant_scope
from review.models import ReviewQueue, ScoreConfig
from tests.concurrency import assert_one_created_one_conflict, send_at_once
from tests.factories import make_tenant
from tests.review.helpers import RUBRIC, make_config, make_queue

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 3


def _clients(tenant) -> tuple[APIClient, APIClient]:
    clients = (APIClient(), APIClient())
    clients[0].force_login(tenant.owner)
    clients[1].force_login(tenant.admin)
    return clients


def _base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def _both_post(clients, url: str, body: dict) -> list:
    return send_at_once(*((c, "post", url, body) for c in clients))


def test_two_score_configs_with_one_name_at_once_make_one_config():
    tenant = make_tenant("Race")
    clients = _clients(tenant)
    for n in range(ROUNDS):
        body = {"name": f"groundedness-{n}", "data_type": "boolean", "rubric": RUBRIC}
        responses = _both_post(clients, f"{_base(tenant)}/score-configs/", body)
        assert_one_created_one_conflict(responses, "name")
        with tenant_scope(tenant.organization.pk):
            assert ScoreConfig.objects.filter(name=body["name"]).count() == 1


def test_two_queues_with_one_name_at_once_make_one_queue():
    tenant = make_tenant("Race")
    config = make_config(tenant)
    clients = _clients(tenant)
    for n in range(ROUNDS):
        body = {"name": f"Second opinion {n}", "form": [{"config_id": config.pk}]}
        responses = _both_post(clients, f"{_base(tenant)}/queues/", body)
        assert_one_created_one_conflict(responses, "name")
        with tenant_scope(tenant.organization.pk):
            assert ReviewQueue.objects.filter(name=body["name"]).count() == 1


def test_two_queues_renamed_to_one_name_at_once_keep_names_unique():
    tenant = make_tenant("Race")
    config = make_config(tenant)
    clients = _clients(tenant)
    for n in range(ROUNDS):
        queues = [make_queue(tenant, configs=[config], name=f"q{n}-{i}") for i in (1, 2)]
        name = f"Cardiology {n}"
        responses = send_at_once(
            *(
                (c, "patch", f"{_base(tenant)}/queues/{q.pk}/", {"name": name})
                for c, q in zip(clients, queues, strict=True)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 409], [r.content for r in responses]
        [loser] = [r for r in responses if r.status_code == 409]
        assert loser.json()["error"]["details"] == {"name": ["taken"]}
        with tenant_scope(tenant.organization.pk):
            assert ReviewQueue.objects.filter(name=name).count() == 1


def test_two_score_configs_renamed_to_one_name_at_once_keep_names_unique():
    tenant = make_tenant("Race")
    clients = _clients(tenant)
    for n in range(ROUNDS):
        configs = [make_config(tenant, name=f"c{n}-{i}") for i in (1, 2)]
        name = f"safety {n}"
        responses = send_at_once(
            *(
                (c, "patch", f"{_base(tenant)}/score-configs/{cfg.pk}/", {"name": name})
                for c, cfg in zip(clients, configs, strict=True)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 409], [r.content for r in responses]
        with tenant_scope(tenant.organization.pk):
            assert ScoreConfig.objects.filter(name=name).count() == 1
