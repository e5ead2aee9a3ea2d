"""The rubric page shows a question's options (and their scale) only for a kind of
answer that has options, and its numbers (lowest, highest, step) only for a kind that
takes numbers, as its score kind says: rendered so by the server, on the first page and
after a refused submit, with what was typed in the hidden fields kept and never
refused."""

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
    tag = re.search(rf'<\w+ [^>]*\bid="{section_id}"[^>]*>', html)
    assert tag, f"no section #{section_id}"
    return re.search(r"\shidden(\s|>|$)", tag.group(0)) is not None


def kinds_marked(html: str, attribute: str) -> set[str]:
    """The kinds of answer whose <option> in the kind select carries ``attribute``."""
    select = re.search(r'<select id="r-type".*?</select>', html, re.S).group(0)
    options = re.findall(r"<option [^>]*>", select)
    marked = [o for o in options if re.search(rf"\s{attribute}(\s|>|=)", o)]
    return {re.search(r'value="(\w+)"', o).group(1) for o in marked}


def kinds_marked_with_options(html: str) -> set[str]:
    return kinds_marked(html, "data-has-options")


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


@pytest.mark.parametrize("data_type", ScoreDataType.values)
def test_the_numbers_are_shown_for_kinds_that_take_numbers_only(tenant, data_type):
    fields = {"data_type": data_type}
    if data_type != ScoreDataType.NUMERIC:
        fields |= {"min_value": None, "max_value": None, "step": None}
    if data_type == ScoreDataType.CATEGORICAL:
        fields["options"] = [{"label": "Yes", "value": 1.0}, {"label": "No", "value": 0.0}]
    config = make_config(tenant, name=f"Question {data_type}", **fields)
    page = signed_in(tenant.admin).get(project_url(tenant, "lead-rubric", config_pk=config.pk))
    html = page.content.decode()
    assert section_hidden(html, "r-numbers") is not score_kind(data_type).numeric
    # The kind select tells the script which kinds take numbers: the score kinds' word.
    assert kinds_marked(html, "data-numeric") == {
        value for value in ScoreDataType.values if score_kind(value).numeric
    }


def test_a_new_question_is_categorical_and_hides_its_numbers(tenant):
    page = signed_in(tenant.admin).get(project_url(tenant, "lead-rubric-create"))
    assert section_hidden(page.content.decode(), "r-numbers")


def test_a_refused_categorical_question_hides_the_numbers_and_keeps_what_was_typed(tenant):
    """A numeric question turned categorical without the script: the refused page (one
    option only) hides the numbers, their fields still holding what was typed."""
    post = {
        "name": "Accuracy",
        "data_type": "categorical",
        "target": "trace",
        "min_value": "abc",
        "max_value": "5",
        "step": "1e400",
        "option-0-label": "Correct",
        "option-0-value": "1",
        **LEVEL,
    }
    page = signed_in(tenant.admin).post(project_url(tenant, "lead-rubric-create"), post)
    assert page.status_code == 422
    html = page.content.decode()
    assert section_hidden(html, "r-numbers") and not section_hidden(html, "options")
    assert "A categorical config needs at least two options." in html
    assert "A number is expected." not in html  # a hidden field: not read
    assert 'value="abc"' in html and 'value="5"' in html and 'value="1e400"' in html


def test_a_categorical_question_is_saved_whatever_its_hidden_number_fields_hold(tenant):
    post = {
        "name": "Accuracy",
        "data_type": "categorical",
        "target": "trace",
        "min_value": "abc",
        "max_value": "nan",
        "step": "1e400",
        "option-0-label": "Correct",
        "option-0-value": "1",
        "option-1-label": "Wrong",
        "option-1-value": "0",
        **LEVEL,
    }
    page = signed_in(tenant.admin).post(project_url(tenant, "lead-rubric-create"), post)
    assert page.status_code == 302, page.content.decode()[:2000]
    with tenancy.tenant_scope(tenant.organization.pk):
        config = ScoreConfig.objects.get(project=tenant.project, name="Accuracy")
    assert (config.min_value, config.max_value, config.step) == (None, None, None)
    assert [o["label"] for o in config.options] == ["Correct", "Wrong"]


def test_a_numeric_question_turned_yes_no_drops_its_bounds_whatever_they_hold(tenant):
    config = make_config(tenant, name="Helpfulness")  # numeric, 0 to 1 by 0.25
    post = {
        "name": "Helpfulness",
        "data_type": "boolean",
        "target": "trace",
        "min_value": "abc",
        "max_value": "1",
        "step": "0.25",
        **LEVEL,
    }
    url = project_url(tenant, "lead-rubric", config_pk=config.pk)
    page = signed_in(tenant.admin).post(url, post)
    assert page.status_code == 302, page.content.decode()[:2000]
    with tenancy.tenant_scope(tenant.organization.pk):
        config.refresh_from_db()
    assert config.data_type == "boolean"
    assert (config.min_value, config.max_value, config.step) == (None, None, None)


def test_a_numeric_question_still_has_its_number_fields_checked(tenant):
    post = {
        "name": "Helpfulness",
        "data_type": "numeric",
        "target": "trace",
        "min_value": "abc",
        "max_value": "5",
        **LEVEL,
    }
    page = signed_in(tenant.admin).post(project_url(tenant, "lead-rubric-create"), post)
    assert page.status_code == 422
    html = page.content.decode()
    assert not section_hidden(html, "r-numbers")
    assert 'aria-invalid="true" aria-describedby="r-min-error"' in html
    assert "A number is expected." in html
