"""When disagreement sends an item to adjudication (review.adjudication)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.adjudication import DisagreementRule
from review.models import ItemStatus
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue

BOOLEAN = DisagreementRule("boolean")
CATEGORICAL = DisagreementRule("categorical")
NUMERIC = DisagreementRule("numeric")


@pytest.mark.parametrize(
    ("rule", "answers", "adjudicates"),
    [
        # Categorical and boolean: any disagreement by default.
        (BOOLEAN, [True, False], True),
        (BOOLEAN, [True, True], False),
        (CATEGORICAL, ["Good", "Good", "Bad"], True),
        (CATEGORICAL, ["Good", "Good", "Good"], False),
        # A tie has no majority to keep, whatever the tolerated dissent.
        (DisagreementRule("boolean", max_dissent_share=0.5), [True, False], True),
        (DisagreementRule("categorical", max_dissent_share=0.9), ["A", "B", "C"], True),
        (DisagreementRule("categorical", max_dissent_share=0.5), ["A", "A", "B", "B"], True),
        # 2-1: a third dissents; tolerated from a share of 1/3 up.
        (DisagreementRule("categorical", max_dissent_share=0.34), ["A", "A", "B"], False),
        (DisagreementRule("categorical", max_dissent_share=1 / 3), ["A", "A", "B"], False),
        (DisagreementRule("categorical", max_dissent_share=0.3), ["A", "A", "B"], True),
        # An empty answer neither agrees nor disagrees; one answer alone never disagrees.
        (BOOLEAN, [True, None], False),
        (BOOLEAN, [True, True, None], False),
        (BOOLEAN, [True, False, None], True),
        (NUMERIC, [0.5, None], False),
        # Numeric: spread (highest minus lowest) beyond the tolerance, 0 by default.
        (NUMERIC, [0.5, 0.75], True),
        (NUMERIC, [0.5, 0.5, 0.5], False),
        (DisagreementRule("numeric", numeric_tolerance=0.25), [0.5, 0.75], False),
        (DisagreementRule("numeric", numeric_tolerance=0.25), [0.1, 0.2, 0.35], False),
        (DisagreementRule("numeric", numeric_tolerance=0.25), [0.25, 0.75], True),
        # Free text never; a question can be switched off.
        (DisagreementRule("text"), ["yes", "no"], False),
        (DisagreementRule("boolean", adjudicates=False), [True, False], False),
    ],
)
def test_the_rule(rule, answers, adjudicates):
    assert (rule.disagreement(answers) is not None) is adjudicates


def test_the_rule_in_words():
    assert BOOLEAN.describe().startswith("Any disagreement sends the item to adjudication.")
    assert "more than 25% of the answers differ" in (
        DisagreementRule("categorical", max_dissent_share=0.25).describe()
    )
    assert "or on a tie" in DisagreementRule("boolean", max_dissent_share=0.5).describe()
    assert NUMERIC.describe().startswith("Any two different answers")
    assert "by more than 1.5" in DisagreementRule("numeric", numeric_tolerance=1.5).describe()
    assert DisagreementRule("text").describe() == "Free text: never sent to adjudication."


def _review(tenant, queue, reviewers, answers_per_reviewer):
    with tenancy.tenant_scope(tenant.organization.pk):
        for user, values in zip(reviewers, answers_per_reviewer, strict=True):
            lease = services.queue_claim_next(actor=Actor(user=user), queue=queue)
            services.assignment_submit(
                actor=Actor(user=user), assignment_id=lease.pk, values=values
            )


def _status(tenant, item) -> str:
    with tenancy.tenant_scope(tenant.organization.pk):
        item.refresh_from_db()
    return item.status


def test_true_and_false_with_half_tolerated_dissent_go_to_adjudication(tenant, client_for):
    """Issue 7's case: a 0.5 threshold let a 1-1 split on a boolean complete."""
    config = make_config(tenant, data_type="boolean", min_value=None, max_value=None, step=None)
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(
        tenant, configs=[config], reviewers=[first, second], overlap=2,
        thresholds={config.pk: 0.5},
    )  # fmt: skip
    (item,) = add_traces(tenant, queue, 1)
    _review(tenant, queue, [first, second], [{str(config.pk): True}, {str(config.pk): False}])
    assert _status(tenant, item) == ItemStatus.NEEDS_ADJUDICATION
    base = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    detail = client_for(tenant.owner).get(f"{base}/queues/{queue.pk}/items/{item.pk}/").json()
    disagreement = detail["disagreement"][str(config.pk)]
    assert disagreement["tie"] is True and disagreement["dissent_share"] == 0.5


def test_by_default_real_disagreements_go_to_adjudication(tenant):
    numeric = make_config(tenant)
    choice = make_config(
        tenant, data_type="categorical", min_value=None, max_value=None, step=None,
        options=[{"label": "Good", "value": 1}, {"label": "Bad", "value": 0}],
    )  # fmt: skip
    reviewers = add_reviewers(tenant, 3)
    queue = make_queue(tenant, configs=[numeric, choice], reviewers=reviewers, overlap=3)
    agreeing, split, numbers_apart = add_traces(tenant, queue, 3)
    n, c = str(numeric.pk), str(choice.pk)
    _review(tenant, queue, reviewers, [{n: 0.5, c: "Good"}] * 3)
    _review(tenant, queue, reviewers, [{n: 0.5, c: "Good"}] * 2 + [{n: 0.5, c: "Bad"}])
    _review(tenant, queue, reviewers, [{n: 0.5, c: "Good"}] * 2 + [{n: 0.75, c: "Good"}])
    assert _status(tenant, agreeing) == ItemStatus.COMPLETE
    assert _status(tenant, split) == ItemStatus.NEEDS_ADJUDICATION
    assert _status(tenant, numbers_apart) == ItemStatus.NEEDS_ADJUDICATION


def test_tolerances_and_an_empty_optional_answer_complete_the_item(tenant):
    numeric = make_config(tenant)
    choice = make_config(
        tenant, data_type="categorical", min_value=None, max_value=None, step=None,
        options=[{"label": "Good", "value": 1}, {"label": "Bad", "value": 0}],
    )  # fmt: skip
    reviewers = add_reviewers(tenant, 3)
    queue = make_queue(
        tenant, configs=[numeric, choice], reviewers=reviewers, overlap=3,
        thresholds={numeric.pk: 0.25, choice.pk: 0.34},
    )  # fmt: skip
    within, empty, beyond = add_traces(tenant, queue, 3)
    n, c = str(numeric.pk), str(choice.pk)
    # 2-1 within a tolerated third of dissent, numbers within 0.25.
    _review(
        tenant, queue, reviewers,
        [{n: 0.5, c: "Good"}, {n: 0.75, c: "Good"}, {n: 0.5, c: "Bad"}],
    )  # fmt: skip
    # One reviewer left the optional categorical question empty; the others agree.
    _review(tenant, queue, reviewers, [{n: 0.5, c: "Bad"}, {n: 0.5}, {n: 0.5, c: "Bad"}])
    # Numbers 0.5 apart, beyond the tolerance.
    _review(tenant, queue, reviewers, [{n: 0.25, c: "Good"}, {n: 0.75, c: "Good"}, {n: 0.5}])
    assert _status(tenant, within) == ItemStatus.COMPLETE
    assert _status(tenant, empty) == ItemStatus.COMPLETE
    assert _status(tenant, beyond) == ItemStatus.NEEDS_ADJUDICATION


def test_the_queue_api_shows_each_questions_rule_in_words_and_numbers(tenant, client_for):
    numeric = make_config(tenant)
    flag = make_config(tenant, data_type="boolean", min_value=None, max_value=None, step=None)
    owner = client_for(tenant.owner)
    base = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    created = owner.post(
        f"{base}/queues/",
        {
            "name": "rules",
            "form": [
                {"config_id": numeric.pk, "numeric_tolerance": 0.25},
                {"config_id": flag.pk},
            ],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    first, second = created.json()["form"]
    assert first["numeric_tolerance"] == 0.25 and first["data_type"] == "numeric"
    assert "spread (highest minus lowest) by more than 0.25" in first["adjudication_rule"]
    assert (second["adjudicates"], second["max_dissent_share"]) == (True, 0.0)
    assert second["adjudication_rule"].startswith("Any disagreement")
    refused = owner.post(
        f"{base}/queues/",
        {"name": "bad", "form": [{"config_id": flag.pk, "max_dissent_share": 1.5}]},
        format="json",
    )
    assert refused.status_code == 400
    schema = owner.get("/api/schema/?format=json").json()
    assert "adjudication_rule" in schema["components"]["schemas"]["FormField"]["properties"]


BEFORE_RULE = ("review", "0002_form_and_pool_history")
WITH_RULE = ("review", "0003_adjudication_rule")


def _executor(db) -> MigrationExecutor:
    """An executor on review's own migrations, not the squash that replaces them (an
    empty database would take the squash, which has no 0002 to stop at)."""
    executor = MigrationExecutor(db)
    executor.loader = MigrationLoader(db, replace_migrations=False)
    return executor


@pytest.fixture
def migration_database(django_db_blocker):
    """A connection to an empty database of its own (dropped afterwards), so a migration
    is checked on the few migrations it needs instead of unapplying the test database's."""
    from django.db import connections

    alias = "migration_check"
    name = f"{connection.settings_dict['NAME']}_migration"[:63]
    with django_db_blocker.unblock():
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
        connections.settings[alias] = {**connection.settings_dict, "NAME": name}
        try:
            yield connections[alias]
        finally:
            connections[alias].close()
            del connections[alias]
            del connections.settings[alias]
            with connection._nodb_cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_the_migration_keeps_existing_thresholds(migration_database):
    db = migration_database
    # Review's schema before the rule, with only what it depends on (auth, projects,
    # the first traces migrations).
    _executor(db).migrate([BEFORE_RULE])
    apps = _executor(db).loader.project_state(BEFORE_RULE).apps

    def model(label: str):
        return apps.get_model(label)._default_manager.db_manager(db.alias)

    org = model("projects.Organization").create(name="Acme", slug="acme")
    project = model("projects.Project").create(organization=org, name="Bot", slug="bot")
    queue = model("review.ReviewQueue").create(organization=org, project=project, name="Q")
    configs = {
        data_type: model("review.ScoreConfig").create(
            organization=org, project=project, name=data_type, data_type=data_type
        )
        for data_type in ("numeric", "boolean", "categorical", "text")
    }
    thresholds = {"numeric": 0.25, "boolean": None, "categorical": 1.5, "text": 0.5}
    for position, config in enumerate(configs.values()):
        model("review.QueueFormField").create(
            organization=org, queue=queue, config=config, position=position
        )
    with db.cursor() as cursor:
        for data_type, threshold in thresholds.items():
            cursor.execute(
                "UPDATE review_queueformfield SET adjudication_threshold = %s "
                "WHERE queue_id = %s AND config_id = %s",
                [threshold, queue.pk, configs[data_type].pk],
            )

    _executor(db).migrate([WITH_RULE])
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT config_id, adjudicates, max_dissent_share, numeric_tolerance "
            "FROM review_queueformfield WHERE queue_id = %s",
            [queue.pk],
        )
        fields = {config_id: rest for config_id, *rest in cursor.fetchall()}
    assert fields == {
        configs["numeric"].pk: [True, 0.0, 0.25],
        # No threshold: now any disagreement adjudicates.
        configs["boolean"].pk: [True, 0.0, 0.0],
        # A dissent share above 1 is capped at 1.
        configs["categorical"].pk: [True, 1.0, 0.0],
        configs["text"].pk: [True, 0.0, 0.0],
    }
