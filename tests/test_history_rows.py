"""Creation history written by hitl.audit.insert_recorded (a submit's annotation and
scores): the row django-simple-history writes on save(), column for column, with the
acting user, API key, source and request id; and the history manager, built once."""

from __future__ import annotations

from django.utils import timezone

from hitl import audit, tenancy
from hitl.audit import Actor
from hitl.request_context import request_id_var
from tests.review.helpers import make_trace
from traces.models import Score

# Columns that differ between two rows written a moment apart.
_OWN = {"id", "history_id", "history_date"}
NOW = timezone.now()


def _score(tenant, trace, name: str) -> Score:
    return Score(
        project=tenant.project,
        trace=trace,
        name=name,
        data_type="numeric",
        value=0.5,
        source="human",
        author=tenant.owner,
        metadata={"queue_id": 1, "why": ["a"]},
        created_at=NOW,
        updated_at=NOW,
    )


def _history(score: Score) -> dict:
    (row,) = Score.history.filter(id=score.pk)
    return {
        f.attname: getattr(row, f.attname)
        for f in type(row)._meta.concrete_fields
        if f.attname not in _OWN
    }


def test_insert_recorded_writes_the_row_simple_history_writes(tenant):
    trace = make_trace(tenant)
    actor = Actor(user=tenant.owner, api_key_id=7, api_key_prefix="hk_x", source="api")
    token = request_id_var.set("req-1")
    try:
        with tenancy.tenant_scope(tenant.organization.pk), audit.acting_as(actor):
            by_orm = _score(tenant, trace, "same")
            by_orm.save()
            copied = [_score(tenant, trace, "same"), _score(tenant, trace, "same")]
            audit.insert_recorded(copied)
            expected = _history(by_orm)
            assert expected["history_type"] == "+" and expected["history_source"] == "api"
            assert expected["history_user_id"] == tenant.owner.pk
            assert expected["history_request_id"] == "req-1"
            assert expected["history_api_key_prefix"] == "hk_x"
            for score in copied:
                assert score.pk is not None and not score._state.adding
                assert _history(score) == expected
    finally:
        request_id_var.reset(token)


def test_insert_recorded_outside_an_actor_records_as_simple_history_does(tenant):
    trace = make_trace(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        score = _score(tenant, trace, "alone")
        audit.insert_recorded([score])
        row = _history(score)
        assert (row["history_type"], row["history_source"]) == ("+", "system")
        assert row["history_user_id"] is None


def test_the_history_manager_class_is_built_once(tenant):
    trace = make_trace(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        score = _score(tenant, trace, "once")
        score.save()
        assert type(Score.history) is type(Score.history) is type(score.history)
        assert [row.id for row in score.history.all()] == [score.pk]
        assert score.history.instance == score and Score.history.instance is None
