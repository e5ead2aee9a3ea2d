"""A rubric's history reads its levels and options in words, entry by entry (the one
history renderer, ``hitl.history``), on the rubric's page as in the admin."""

from __future__ import annotations

from hitl import tenancy
from hitl.audit import Actor
from review import services
from tests.page_clients import project_url, signed_in
from tests.review.helpers import RUBRIC, make_config


def test_level_and_option_changes_read_in_words(tenant):
    config = make_config(
        tenant,
        data_type="categorical",
        min_value=None,
        max_value=None,
        step=None,
        options=[{"label": "Wrong", "value": 0.0}, {"label": "Right", "value": 1.0}],
    )
    rubric = [
        {**RUBRIC[1], "definition": "Correct, complete and cited."},
        {"label": "Partial", "definition": "Partly right.", "examples": ["One of two doses."]},
    ]
    options = [{"label": "Right", "value": 1.0}, {"label": "Wrong", "value": 0.0},
               {"label": "Partial", "value": 0.5}]  # fmt: skip
    with tenancy.tenant_scope(tenant.organization.pk):
        services.score_config_update(
            actor=Actor(user=tenant.owner), config=config, rubric=rubric, options=options
        )
        entries = services_history(config)
    lines = [
        f"{line['field']}: {line['new']}"
        if line["old"] is None
        else f"{line['field']}: {line['old']} → {line['new']}"
        for line in entries[0]["lines"]
    ]
    text = "\n".join(lines)
    assert (
        "rubric: level “Good” definition: “Correct and complete.” → “Correct, complete and cited.”"
        in text
    )
    (added,) = [line for line in lines if line.startswith("rubric: level “Partial” added: ")]
    assert "definition “Partly right.”" in added and "examples “One of two doses.”" in added
    assert "rubric: level “Bad” removed" in text
    assert "options: option “Partial” added: value 0.5" in text
    assert "options: order: option “Wrong”, option “Right” → option “Right”, option “Wrong”" in text
    assert "{" not in text and "[" not in text, text  # no raw data

    client = signed_in(tenant.admin)
    history = project_url(tenant, "lead-rubric-history", config_pk=config.pk)
    body = client.get(history).content.decode()  # the edit history the rubric page loads
    assert "level “Partial” added" in body and "{&#x27;label" not in body
    page = client.get(project_url(tenant, "lead-rubric", config_pk=config.pk)).content.decode()
    assert f'hx-get="{history}"' in page and "{&#x27;label" not in page


def services_history(config):
    from hitl.audit import history_for_display

    return history_for_display(config.history.all())
