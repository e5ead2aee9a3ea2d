def test_owner_lists_projects(tenant, client_for):
    client = client_for(tenant.owner)
    response = client.get(f"/api/orgs/{tenant.organization.slug}/projects/")
    assert response.status_code == 200, response.content
    assert [p["slug"] for p in response.json()["results"]] == [tenant.project.slug]
