"""Every write operation of the API (POST, PUT, PATCH, DELETE in the OpenAPI schema) has a
test that saw it succeed and read its answer.

Runs last (tests/write_coverage.py reorders it); the record is made by the wrapped test
client while the rest of the suite runs, so a partial run skips this check. Under
pytest-xdist a worker sees only its share: the controller merges the workers' records
and runs the same check after all of them (tests/write_coverage.py), failing the run.
"""

from __future__ import annotations

import pytest

from tests import write_coverage


def test_every_api_write_has_a_test_reading_its_success_body():
    if write_coverage.in_worker():
        pytest.skip("under pytest-xdist the controller checks the workers' merged records")
    reason = write_coverage.partial_run_reason()
    if reason:
        pytest.skip(f"needs the whole suite: {reason}")
    missing = write_coverage.not_exercised()
    assert not missing, (
        f"{len(missing)} API write operations have no test that reads the body of a 2xx "
        "answer; add a success-path test asserting the body to the app's tests:\n"
        + "\n".join(missing)
    )


def test_the_recorder_matches_schema_paths_to_url_patterns():
    key = write_coverage.operation_key
    schema = key("/api/orgs/{org_slug}/projects/{project_slug}/datasets/{id}/promote/")
    route = key(
        "api/orgs/<slug:org_slug>/projects/<slug:project_slug>/^datasets/(?P<pk>[^/.]+)/promote/$"
    )
    assert schema == route == "api/orgs/<>/projects/<>/datasets/<>/promote/"
    assert len(write_coverage.schema_write_operations()) >= 60


def test_a_write_is_recorded_when_its_success_body_is_read(db, client_for):
    from tests.factories import make_user

    key = ("POST", "api/orgs/")
    earlier = write_coverage.exercised.pop(key, None)
    try:
        response = client_for(make_user()).post("/api/orgs/", {"name": "Rec"}, format="json")
        assert response.status_code == 201
        assert key not in write_coverage.exercised  # answered, not yet read
        assert response.json()["name"] == "Rec"
        assert key in write_coverage.exercised
    finally:
        if earlier is not None:
            write_coverage.exercised[key] = earlier
