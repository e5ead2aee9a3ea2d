"""The rubric page shows a question's options (and their scale) only for a kind of
answer that has options, as its score kind says: rendered so by the server, on the
first page and after a refused submit, with what was typed in the hidden rows kept and
never refused."""

from __future__ import annotations

import re

import pytest

from hitl import tenancy
from review.models import ScoreConfig
from tests.page_clients import project_url, signed_in
from tests.review.helpers import make_config
from traces.models import ScoreDataType
from traces.score_kinds import score_kind

LEVEL = {
    "level-0-label": "Good",
    "level-0-definition": "Helps.",
    "level-0-examples": "Answers the question.",
}


def section_hidden(html: str, section_id: str) -> bool:
    tag = re.search(rf'<fieldset [^>]*id="{section_id}"[^>]*>', html)
    assert tag, f"no fieldset #{section_id}"
    return re.search(r"\shidden(\s|>|$)", tag.group(0)) is not None


def kinds_marked_with_options(html: str) -> set[str]:
    select = re.search(r'<select id="r-type".*?</select>', html, re.S).group(0)
    return set(re.findall(r'<option value="(\w+)" data-has-options', select))


@pytest.mark.parametrize("data_type", ScoreDataType.values)
def test_the_options_section_is_shown_for_kinds_with_options_only(tenant, data_type):
    fields = {"data_type": data_type}
    if data_type == ScoreDataType.CATEGORICAL:
        fields["options"] = [{"label": "Yes", "value": 1.0}, {"label": "No", "value": 0.0}]
    config = make_config(tenant, name=f"Question {data_type}", **fields)
    page = signed_in(tenant.admin).get(project_url(tenant, "lead-rubric", config_pk=config.pk))
    html = page.content.decode()
    has_options = score_kind(data_type).has_options
    assert section_hidden(html, "options") is not has_options
    assert section_hidden(html, "r-scale") is not has_options
    # The kind select tells the script which kinds have options: the score kinds' word.
    assert kinds_marked_with_options(html) == {
        value for value in ScoreDataType.values if score_kind(value).has_options
    }


def test_a_new_question_is_categorical_and_shows_its_options(tenant):
    page = signed_in(tenant.admin).get(project_url(tenant, "lead-rubric-create"))
    assert not section_hidden(page.content.decode(), "options")


def test_a_refused_numeric_question_hides_the_options_and_keeps_what_was_typed(tenant):
    """A categorical question turned numeric without the script: the refused page (no
    bounds yet) hides the options, their rows still holding what was typed."""
    post = {
        "name": "Helpfulness",
        "data_type": "numeric",
        "target": "trace",
        "option-0-label": "Helpful",
        "option-0-value": "1",
        "option-1-label": "Half typed",
        "option-1-value": "",
        **LEVEL,
    }
    page = signed_in(tenant.admin).post(project_url(tenant, "lead-rubric-create"), post)
    assert page.status_code == 422
    html = page.content.decode()
    assert section_hidden(html, "options") and section_hidden(html, "r-scale")
    assert "A numeric config needs min_value and max_value." in html
    assert "An option needs a label and a value." not in html  # a hidden row: not read
    assert 'value="Helpful"' in html and 'value="Half typed"' in html


def test_a_numeric_question_is_saved_whatever_its_hidden_option_rows_hold(tenant):
    post = {
        "name": "Helpfulness",
        "data_type": "numeric",
        "target": "trace",
        "min_value": "1",
        "max_value": "5",
        "option-0-label": "Half typed",
        "option-0-value": "",
        "option-1-label": "",
        "option-1-value": "1e999",
        **LEVEL,
    }
    page = signed_in(tenant.admin).post(project_url(tenant, "lead-rubric-create"), post)
    assert page.status_code == 302, page.content.decode()[:2000]
    with tenancy.tenant_scope(tenant.organization.pk):
        config = ScoreConfig.objects.get(project=tenant.project, name="Helpfulness")
    assert (config.data_type, config.options, config.ordered) == ("numeric", [], False)


def test_a_categorical_question_still_has_its_option_rows_checked(tenant):
    post = {
        "name": "Accuracy",
        "data_type": "categorical",
        "target": "trace",
        "option-0-label": "Correct",
        "option-0-value": "1",
        "option-1-label": "Half typed",
        "option-1-value": "",
        **LEVEL,
    }
    page = signed_in(tenant.admin).post(project_url(tenant, "lead-rubric-create"), post)
    assert page.status_code == 422
    html = page.content.decode()
    assert not section_hidden(html, "options")
    assert "An option needs a label and a value." in html
