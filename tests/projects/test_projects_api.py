import pytest

from hitl.tenancy import tenant_scope
from projects.models import Project


def test_admin_creates_renames_and_deletes_a_project(tenant, client_for):
    client = client_for(tenant.admin)
    base = f"/api/orgs/{tenant.organization.slug}/projects/"
    created = client.post(base, {"name": "Triage bot", "description": "ER triage"}, format="json")
    assert created.status_code == 201, created.content
    slug = created.json()["slug"]
    assert slug == "triage-bot"
    renamed = client.patch(f"{base}{slug}/", {"name": "Triage assistant"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Triage assistant"
    assert client.delete(f"{base}{slug}/").status_code == 204
    with tenant_scope(tenant.organization.pk):
        assert not Project.objects.filter(slug=slug).exists()
        history = Project.history.filter(slug=slug).order_by("history_date")
        assert [h.history_type for h in history] == ["+", "~", "-"]
        assert {h.history_user_id for h in history} == {tenant.admin.pk}


def test_duplicate_project_slug_conflicts(tenant, client_for):
    client = client_for(tenant.admin)
    base = f"/api/orgs/{tenant.organization.slug}/projects/"
    response = client.post(base, {"name": tenant.project.name}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"slug": ["taken"]}


def test_viewer_cannot_create_projects(tenant, client_for):
    response = client_for(tenant.viewer).post(
        f"/api/orgs/{tenant.organization.slug}/projects/", {"name": "x"}, format="json"
    )
    assert response.status_code == 403


def test_renaming_the_organization_answers_it_renamed_and_deleting_a_project_answers_nothing(
    tenant, client_for
):
    client = client_for(tenant.owner)
    org_url = f"/api/orgs/{tenant.organization.slug}/"
    renamed = client.patch(org_url, {"name": "Acme Health"}, format="json")
    assert renamed.status_code == 200, renamed.content
    body = renamed.json()
    assert body["name"] == "Acme Health" and body["slug"] == tenant.organization.slug
    assert body["id"] == tenant.organization.pk
    spare = client.post(f"{org_url}projects/", {"name": "Spare"}, format="json").json()
    deleted = client.delete(f"{org_url}projects/{spare['slug']}/")
    assert deleted.status_code == 204 and deleted.content == b""
    with tenant_scope(tenant.organization.pk):
        assert not Project.objects.filter(pk=spare["id"]).exists()


def test_a_project_in_use_is_deleted_with_its_queues_and_experiments(tenant, client_for):
    """A queue's questions and an experiment's results point at the project's own score
    configs and dataset versions: deleting the project takes them along (they refused the
    delete before, and it answered 500)."""
    from datasets import services as dataset_services
    from datasets.models import Experiment
    from hitl.audit import Actor
    from review.models import QueueFormField
    from tests.datasets.helpers import import_rows, make_dataset
    from tests.review.helpers import make_queue

    make_queue(tenant)
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, [{"id": "a", "input": "a"}])
    with tenant_scope(tenant.organization.pk):
        experiment = dataset_services.experiment_create(
            actor=Actor(user=tenant.owner), dataset=dataset, name="run"
        )
        dataset_services.experiment_results_post(
            actor=Actor(user=tenant.owner),
            experiment=experiment,
            results=[{"id": "a", "output": "A", "scores": {"accuracy": 1.0}}],
        )
    client = client_for(tenant.admin)
    url = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/"
    deleted = client.delete(url)
    assert deleted.status_code == 204, deleted.content
    with tenant_scope(tenant.organization.pk):
        assert not Project.objects.filter(pk=tenant.project.pk).exists()
        assert not QueueFormField.objects.exists() and not Experiment.objects.exists()


def test_a_score_config_a_queue_asks_is_kept_with_a_reason(tenant):
    """Deleting one score config a queue's form still asks is refused (409 in the API's
    shape through the one rule for refused deletes), and the config stays."""
    from hitl.exceptions import Conflict, conflict_on_protected
    from review.models import ScoreConfig
    from tests.review.helpers import make_queue

    queue = make_queue(tenant)
    with tenant_scope(tenant.organization.pk):
        config = ScoreConfig.objects.get(pk=queue.form_fields.get().config_id)
        with pytest.raises(Conflict) as refused, conflict_on_protected():
            config.delete()
        assert refused.value.details == {"protected": {"queue form fields": 1}}
        assert "cannot be deleted" in refused.value.message
        assert ScoreConfig.objects.filter(pk=config.pk).exists()
