"""The alignment mapping's automated score name offers the project's automated score
names (a datalist): its own project's only, and not the names of people's scores."""

from __future__ import annotations

from tests.page_clients import project_url, signed_in
from tests.traces.read_builders import make_score, make_trace


def test_the_mapping_form_offers_this_projects_automated_score_names(tenant, other_tenant):
    trace = make_trace(tenant.project, "t-1")
    make_score(trace, "faithfulness", 0.4, source="llm_judge")
    make_score(trace, "exact_match", 1.0, source="code")
    make_score(trace, "accuracy", 1.0, source="human")
    make_score(make_trace(other_tenant.project, "o-1"), "their_secret_judge", 0.1)

    page = signed_in(tenant.admin).get(project_url(tenant, "alignment-mappings"))
    assert page.status_code == 200
    assert page.context["score_names"] == ["exact_match", "faithfulness"]
    body = page.content.decode()
    datalist = body[body.index('<datalist id="m-score-names">') :].split("</datalist>")[0]
    assert '<option value="faithfulness">' in datalist
    assert "accuracy" not in datalist and "their_secret_judge" not in body
    assert 'list="m-score-names"' in body
