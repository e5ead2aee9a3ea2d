"""The rubric editor's level rows: a question with three levels is written in one go,
its rows added, moved and removed by buttons that need no script, hostile rows refused
beside the row with nothing written, and the versions say what happened to the levels."""

from __future__ import annotations

from hitl import tenancy
from review.models import ScoreConfig, ScoreConfigVersion
from tests.page_clients import project_url, signed_in

LEVELS = [
    ("Correct", "Right for this patient.", "2 g a day in cirrhosis."),
    ("Partly", "Right but incomplete.", "Right dose, no timing."),
    ("Wrong", "Unsafe advice.", "Warfarin in pregnancy."),
]


def rubric_post(levels, **extra):
    post = {
        "name": "Clinical accuracy",
        "data_type": "categorical",
        "target": "trace",
        "options": "Correct = 2\nPartly = 1\nWrong = 0",
    }
    for i, (label, definition, example) in enumerate(levels):
        post |= {
            f"level-{i}-label": label,
            f"level-{i}-definition": definition,
            f"level-{i}-examples": example,
        }
    return post | extra


def shown_rows(page):
    return [(row["label"], row["definition"]) for row in page.context["levels"]]


def test_level_rows_are_added_moved_and_removed_then_saved_with_three_levels(tenant):
    client = signed_in(tenant.admin)
    url = project_url(tenant, "lead-rubric-create")
    # A new question offers two rows; "Add a level" makes a third, keeping what was typed.
    assert len(client.get(url).context["levels"]) == 2
    added = client.post(url, rubric_post(LEVELS[:2], rows="add"))
    assert added.status_code == 200
    assert shown_rows(added) == [("Correct", LEVELS[0][1]), ("Partly", LEVELS[1][1]), ("", "")]
    assert 'value="down-1"' in added.content.decode()
    # Moving and removing rows saves nothing.
    moved = client.post(url, rubric_post([LEVELS[2], *LEVELS[:2]], rows="down-0"))
    assert [label for label, _ in shown_rows(moved)] == ["Correct", "Wrong", "Partly"]
    removed = client.post(url, rubric_post(LEVELS, rows="remove-1"))
    assert [label for label, _ in shown_rows(removed)] == ["Correct", "Wrong"]
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not ScoreConfig.objects.filter(project=tenant.project).exists()

    created = client.post(url, rubric_post(LEVELS))
    assert created.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        config = ScoreConfig.objects.get(project=tenant.project)
    assert [level["label"] for level in config.rubric] == ["Correct", "Partly", "Wrong"]

    # Version 2: "Partly" moved last, "Wrong" removed, "Unsure" added.
    edit = rubric_post(
        [LEVELS[0], ("Unsure", "Cannot tell.", "No dose given."), LEVELS[1]],
        options="Correct = 2\nPartly = 1\nUnsure = 0",
    )
    assert client.post(created["Location"], edit).status_code == 302
    page = client.get(created["Location"])
    changes = page.context["versions"][0]["changes"]
    texts = [c.get("text") for c in changes]
    assert "Level “Unsure” added as level 2: Cannot tell." in texts
    assert "Level “Wrong” removed" in texts
    assert {"field": "options", "old": "Correct = 2, Partly = 1, Wrong = 0"} | {
        "new": "Correct = 2, Partly = 1, Unsure = 0"
    } in changes
    # Reordering alone is a version that says so.
    swapped = rubric_post(
        [LEVELS[1], LEVELS[0], ("Unsure", "Cannot tell.", "No dose given.")],
        options="Correct = 2\nPartly = 1\nUnsure = 0",
    )
    assert client.post(created["Location"], swapped).status_code == 302
    body = client.get(created["Location"]).content.decode()
    assert "Levels reordered: Correct, Unsure, Partly → Partly, Correct, Unsure" in body
    with tenancy.tenant_scope(tenant.organization.pk):
        assert ScoreConfigVersion.objects.filter(config=config).count() == 3


def test_hostile_level_rows_are_refused_beside_the_row_and_nothing_is_written(tenant):
    client = signed_in(tenant.admin)
    url = project_url(tenant, "lead-rubric-create")
    hostile = [
        # Two levels with one label (told apart by label: refused at the second row).
        (rubric_post([LEVELS[0], ("correct", "Again.", "Same.")]), 1, "Another level"),
        # A row with a definition but no label.
        (rubric_post([LEVELS[0], ("", "No label.", "Example.")]), 1, "needs a label"),
    ]
    for post, row, reason in hostile:
        page = client.post(url, post)
        assert page.status_code == 422, reason
        levels = page.context["levels"]
        assert any(reason in error for error in levels[row]["errors"]), levels[row]
        assert not levels[0].get("errors")
        assert f'id="l{row}-error"' in page.content.decode()
    # A NUL in a row's label is refused before any form, naming the row's field.
    page = client.post(url, rubric_post([LEVELS[0], ("Wr\x00ong", "Bad.", "Example.")]))
    assert page.status_code == 400
    assert "level-1-label" in page.content.decode() and "NUL" in page.content.decode()
    # A row button that names no row the page offers is refused with its reason.
    page = client.post(url, rubric_post(LEVELS, rows="up-1; DROP"))
    assert page.status_code == 422
    assert "Add a level, or remove or move" in page.content.decode()
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not ScoreConfig.objects.filter(project=tenant.project).exists()


def option_rows(options):
    post = {}
    for i, (label, value) in enumerate(options):
        post |= {f"option-{i}-label": label, f"option-{i}-value": value}
    return post


def test_option_rows_are_added_moved_removed_and_refused_beside_the_row(tenant):
    client = signed_in(tenant.admin)
    url = project_url(tenant, "lead-rubric-create")
    page = client.get(url)
    assert [row["label"] for row in page.context["option_rows"]] == ["", ""]
    typed = [("Correct", "2"), ("Wrong", "0")]
    added = client.post(url, rubric_post(LEVELS, rows="option-add") | option_rows(typed))
    assert [(r["label"], r["value"]) for r in added.context["option_rows"]] == [*typed, ("", "")]
    assert added.context["levels"][2]["label"] == "Wrong"  # the levels are kept as typed
    three = [("Correct", "2"), ("Wrong", "0"), ("Partly", "1")]
    moved = client.post(url, rubric_post(LEVELS, rows="option-up-2") | option_rows(three))
    assert [r["label"] for r in moved.context["option_rows"]] == ["Correct", "Partly", "Wrong"]
    removed = client.post(url, rubric_post(LEVELS, rows="option-remove-0") | option_rows(three))
    assert [r["label"] for r in removed.context["option_rows"]] == ["Wrong", "Partly"]

    hostile = [
        ([("Correct", "2"), ("correct", "1")], 1, "label", "Another option is labelled"),
        ([("Correct", "2"), ("Wrong", "")], 1, "label", "needs a label and a value"),
        ([("Correct", "2"), ("Wrong", "nan")], 1, "value", "A number is expected"),
        ([("Correct", "1"), ("Wrong", "1")], 1, "value", "Another option has the value 1"),
    ]
    for options, row, part, reason in hostile:
        post = rubric_post(LEVELS[:1], scale="ordinal") | option_rows(options)
        post.pop("options")
        page = client.post(url, post)
        assert page.status_code == 422, reason
        rows = page.context["option_rows"]
        assert any(reason in error for error in rows[row]["errors"]), rows
        assert not rows[0]["errors"]
        assert page.context["form"][f"option-{row}-{part}"].errors
        assert f'id="o{row}-error"' in page.content.decode()
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not ScoreConfig.objects.filter(project=tenant.project).exists()

    post = rubric_post(LEVELS) | option_rows([*three, ("", "")])
    post.pop("options")
    created = client.post(url, post)
    assert created.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        config = ScoreConfig.objects.get(project=tenant.project)
    assert config.options == [
        {"label": "Correct", "value": 2.0},
        {"label": "Wrong", "value": 0.0},
        {"label": "Partly", "value": 1.0},
    ]
    # The edit page shows the saved options as rows; their new order is a version.
    edit_page = client.get(created["Location"])
    assert [r["label"] for r in edit_page.context["option_rows"]][:3] == [
        "Correct",
        "Wrong",
        "Partly",
    ]
    post = rubric_post(LEVELS) | option_rows([three[0], three[2], three[1]])
    post.pop("options")
    assert client.post(created["Location"], post).status_code == 302
    changes = client.get(created["Location"]).context["versions"][0]["changes"]
    assert {
        "field": "options",
        "old": "Correct = 2, Wrong = 0, Partly = 1",
        "new": "Correct = 2, Partly = 1, Wrong = 0",
    } in changes
