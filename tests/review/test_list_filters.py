"""Review lists: what their filters mean (the route walker in
tests/test_list_parameters.py checks every list's unknown and invalid parameters)."""

from __future__ import annotations

from hitl import tenancy
from hitl.audit import Actor
from review import services
from tests.review.helpers import add_traces, make_config, make_queue


def _base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(row["name"] for row in response.json()["results"])


def test_a_bogus_item_status_answers_400_not_an_empty_list(tenant, client_for):
    queue = make_queue(tenant, configs=[make_config(tenant)])
    add_traces(tenant, queue, 2)
    client = client_for(tenant.owner)
    url = f"{_base(tenant)}/queues/{queue.pk}/items/"
    response = client.get(url, {"status": "bogus"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert list(error["details"]) == ["status"]
    assert len(client.get(url, {"status": "open"}).json()["results"]) == 2
    assert client.get(url, {"status": "complete"}).json()["results"] == []
    assert client.get(url, {"stauts": "open"}).status_code == 400  # a typo is not "no filter"


def test_board_column_and_assignee_filters(tenant, client_for):
    queue = make_queue(tenant, configs=[make_config(tenant)], assignment_strategy="manual")
    first, _second = add_traces(tenant, queue, 2)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        [item] = services.queue_items_update(
            actor=owner, queue=queue, item_ids=[first.pk], assignees=[tenant.reviewer.pk]
        )
    client = client_for(tenant.owner)
    url = f"{_base(tenant)}/queues/{queue.pk}/items/"
    assigned = client.get(url, {"assignee": tenant.reviewer.pk}).json()["results"]
    assert [row["id"] for row in assigned] == [item.pk]
    pending = client.get(url, {"board_status": "pending"}).json()["results"]
    assert len(pending) == 2
    assert client.get(url, {"board_status": "in_progress"}).json()["results"] == []
    for bad in ({"assignee": "me"}, {"assignee": "99999999999999999999"}, {"assignee": "0"}):
        assert client.get(url, bad).status_code == 400, bad


def test_archived_queues_and_configs_are_left_out_unless_asked_for(tenant, client_for):
    config, archived_config = make_config(tenant, name="kept"), make_config(tenant, name="gone")
    queue = make_queue(tenant, configs=[config], name="active queue")
    gone = make_queue(tenant, configs=[config], name="archived queue")
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_archive(actor=owner, queue=gone)
        services.score_config_archive(actor=owner, config=archived_config)
    client = client_for(tenant.viewer)
    assert _names(client.get(f"{_base(tenant)}/queues/")) == [queue.name]
    with_archived = client.get(f"{_base(tenant)}/queues/", {"archived": "true"})
    assert _names(with_archived) == sorted([gone.name, queue.name])
    assert _names(client.get(f"{_base(tenant)}/score-configs/")) == ["kept"]
    with_archived = client.get(f"{_base(tenant)}/score-configs/", {"archived": "yes"})
    assert _names(with_archived) == ["gone", "kept"]
    refused = client.get(f"{_base(tenant)}/queues/", {"archived": "sometimes"})
    assert refused.status_code == 400
    assert refused.json()["error"]["details"] == {"archived": ["Use true or false."]}
    # An archived config is still readable by id (its answers point at it).
    detail = client.get(f"{_base(tenant)}/score-configs/{archived_config.pk}/")
    assert detail.status_code == 200 and detail.json()["archived_at"]


def test_comments_by_text_and_mention(tenant, client_for):
    [item] = add_traces(tenant, make_queue(tenant, configs=[make_config(tenant)]), 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        for body in (f"@{tenant.admin.email} the dosage looks wrong", "citation is fine"):
            services.comment_create(
                actor=Actor(user=tenant.reviewer), project=tenant.project, body=body,
                trace_id=item.trace_id,
            )  # fmt: skip
    client = client_for(tenant.owner)
    url = f"{_base(tenant)}/comments/"
    [found] = client.get(url, {"q": "dosage"}).json()["results"]
    assert "dosage" in found["body"]
    [mentioned] = client.get(url, {"mentions": tenant.admin.pk}).json()["results"]
    assert mentioned["id"] == found["id"]
    assert client.get(url, {"q": "x" * 300}).status_code == 400
