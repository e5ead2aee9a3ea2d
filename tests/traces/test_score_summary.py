"""Trace signals (traces/score_summary.py): kept by the database for every writer, never
missing a fact (even with two writers at once), and only ever used to skip traces, so
the list stays exact when a score or feedback row changes or goes away."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection, connections, transaction

from hitl.tenancy import tenant_scope
from tests.traces.ingest_helpers import event, post, span
from tests.traces.read_builders import make_feedback, make_score, make_trace
from traces import score_summary as signals
from traces.models import Feedback, Score, Trace
from traces.selectors import traces_matching


def _signals(trace: Trace) -> dict | None:
    with tenant_scope(trace.organization_id):
        return Trace.objects.values_list("signals", flat=True).get(pk=trace.pk)


def _matching(tenant, **params) -> set[str]:
    with tenant_scope(tenant.organization.pk):
        found = traces_matching(project=tenant.project, params=params)
        return set(found.values_list("external_id", flat=True))


def test_signals_say_what_the_scores_and_feedback_say(tenant):
    trace = make_trace(tenant.project, "t-1")
    assert _signals(trace) is None
    make_score(trace, "correctness", 0.7)
    make_score(trace, "correctness", 0.2, source="code")
    make_score(trace, "tone", label="rude")
    make_score(trace, "correctness", 0.0, source="human")  # not an automated bound
    make_feedback(trace, "thumbs", 1)
    make_feedback(trace, "rating", 4)
    make_feedback(trace, "rating", 2)
    assert _signals(trace) == {
        "s": {"correctness": [0.2, 0.7], "tone": [None, None]},
        "h": True,
        "f": True,
        "tu": True,
        "r": [2, 4],
    }
    make_feedback(trace, "thumbs", -1)
    make_feedback(trace, "comment", None, comment="meh")
    assert _signals(trace)["td"] is True
    # Thread-level rows have no trace; another trace is untouched.
    other = make_trace(tenant.project, "t-2")
    assert _signals(other) is None


def test_ingested_scores_and_feedback_reach_signals_and_the_list(tenant, client_for):
    client = client_for(key=tenant.key("ingest"))
    score = {"id": "sc-1", "trace_id": "run", "name": "correctness", "value": 0.4,
             "source": "llm_judge"}  # fmt: skip
    thumbs = {"id": "fb-1", "trace_id": "run", "kind": "thumbs", "value": "up"}
    events = [span("run", "s1"), event("score", score), event("feedback", thumbs)]
    assert post(client, tenant, events).status_code == 200
    assert _matching(tenant, score="correctness<0.5", feedback="thumbs_up") == {"run"}

    # The same ids sent again with new values (the update path of both writers).
    events = [
        event("score", {**score, "value": 0.95}),
        event("feedback", {**thumbs, "value": "down"}),
    ]
    assert post(client, tenant, events).status_code == 200
    with tenant_scope(tenant.organization.pk):
        trace = Trace.objects.get(external_id="run")
    assert _signals(trace)["s"]["correctness"] == [0.4, 0.95]  # widened, never narrowed
    assert _signals(trace)["td"] is True and _signals(trace)["tu"] is True
    # Signals say more than is true now; the list still answers exactly.
    assert _matching(tenant, score="correctness>0.9", feedback="thumbs_down") == {"run"}
    assert _matching(tenant, score="correctness<0.5") == set()
    assert _matching(tenant, feedback="thumbs_up") == set()


def test_rows_deleted_leave_signals_that_the_exact_condition_corrects(tenant):
    trace = make_trace(tenant.project, "t")
    feedback = make_feedback(trace, "thumbs", -1)
    score = make_score(trace, "correctness", 0.1)
    assert _matching(tenant, feedback="thumbs_down", score="correctness<0.5") == {"t"}
    with tenant_scope(tenant.organization.pk):
        Feedback.objects.filter(pk=feedback.pk).delete()
        Score.objects.filter(pk=score.pk).delete()
    assert _signals(trace)["td"] is True
    assert _matching(tenant, feedback="thumbs_down") == set()
    assert _matching(tenant, score="correctness<0.5") == set()
    assert _matching(tenant, reviewed="false") == {"t"}


def test_the_list_with_signals_equals_the_list_without(tenant):
    """Random scores, feedback, changes and deletions; every filter on scores and
    feedback answers what the rows say, checked against the rows themselves."""
    rng = random.Random(11)
    traces = [make_trace(tenant.project, f"t{n}") for n in range(40)]
    rows = []
    for trace in traces:
        for _ in range(rng.randint(0, 3)):
            source = rng.choice(("llm_judge", "code", "human"))
            rows.append(make_score(trace, rng.choice(("a", "b")), round(rng.random(), 2),
                                   source=source))  # fmt: skip
        for _ in range(rng.randint(0, 2)):
            kind = rng.choice(("thumbs", "rating", "comment"))
            value = {"thumbs": rng.choice((1, -1)), "rating": rng.randint(1, 5)}.get(kind)
            rows.append(make_feedback(trace, kind, value))
    with tenant_scope(tenant.organization.pk):
        for row in rng.sample(rows, len(rows) // 4):  # some change, some go away
            if rng.random() < 0.5:
                type(row).objects.filter(pk=row.pk).delete()
            elif isinstance(row, Score):
                Score.objects.filter(pk=row.pk).update(value=round(rng.random(), 2))
            elif row.kind == "thumbs":
                Feedback.objects.filter(pk=row.pk).update(value=-row.value)
        scores = list(Score.objects.values("trace__external_id", "name", "value", "source"))
        feedback = list(Feedback.objects.values("trace__external_id", "kind", "value"))

    def has_score(name, test=None):
        return {
            s["trace__external_id"]
            for s in scores
            if s["name"] == name
            and s["source"] != "human"
            and (test is None or (s["value"] is not None and test(s["value"])))
        }

    def has_feedback(test):
        return {f["trace__external_id"] for f in feedback if test(f)}

    human = {s["trace__external_id"] for s in scores if s["source"] == "human"}
    cases = {
        "score=a<0.5": ({"score": "a<0.5"}, has_score("a", lambda v: v < 0.5)),
        "score=b>=0.7": ({"score": "b>=0.7"}, has_score("b", lambda v: v >= 0.7)),
        "score=a=0.5": ({"score": "a=0.5"}, has_score("a", lambda v: v == 0.5)),
        "score=b": ({"score": "b"}, has_score("b")),
        "thumbs_down": (
            {"feedback": "thumbs_down"},
            has_feedback(lambda f: f["kind"] == "thumbs" and f["value"] < 0),
        ),
        "thumbs_up": (
            {"feedback": "thumbs_up"},
            has_feedback(lambda f: f["kind"] == "thumbs" and f["value"] > 0),
        ),
        "any": ({"feedback": "any"}, has_feedback(lambda f: True)),
        "rating 2..3": (
            {"feedback_rating_min": "2", "feedback_rating_max": "3"},
            has_feedback(lambda f: f["kind"] == "rating" and 2 <= f["value"] <= 3),
        ),
        "reviewed": ({"reviewed": "true"}, human),
        "a<0.5 and thumbs down": (
            {"score": "a<0.5", "feedback": "thumbs_down"},
            has_score("a", lambda v: v < 0.5)
            & has_feedback(lambda f: f["kind"] == "thumbs" and f["value"] < 0),
        ),
    }
    for label, (params, expected) in cases.items():
        assert _matching(tenant, **params) == expected, label
    assert any(expected for _, expected in cases.values())


def test_the_rebuild_computes_what_the_triggers_kept(tenant):
    for n in range(6):
        trace = make_trace(tenant.project, f"t{n}")
        make_score(trace, "x", n / 10)
        make_score(trace, "x", 1 - n / 10, source="code")
        if n % 2:
            make_feedback(trace, "thumbs", -1)
            make_feedback(trace, "rating", n)
    with tenant_scope(tenant.organization.pk):
        kept = dict(Trace.objects.values_list("external_id", "signals"))
        with connection.cursor() as cursor:
            for statement in signals.rebuild_sql():
                cursor.execute(statement)
        rebuilt = dict(Trace.objects.values_list("external_id", "signals"))
    assert rebuilt == kept
    assert kept["t1"] == {"s": {"x": [0.1, 0.9]}, "f": True, "td": True, "r": [1, 1]}


@pytest.mark.django_db(transaction=True)
def test_two_writers_at_once_both_land_in_the_signals(tenant):
    """The first writer holds its transaction open after writing; the second writes the
    same trace meanwhile and commits after it. Neither fact may be lost."""
    trace = make_trace(tenant.project, "hot")
    first_wrote, errors = threading.Event(), []

    def first() -> None:
        try:
            with tenant_scope(tenant.organization.pk), transaction.atomic():
                make_score(trace, "first", 0.1)
                first_wrote.set()
                threading.Event().wait(0.5)  # the second writer is waiting on the trace
        except BaseException as exc:
            errors.append(exc)
            first_wrote.set()
        finally:
            connections.close_all()

    def second() -> None:
        try:
            first_wrote.wait(5)
            with tenant_scope(tenant.organization.pk), transaction.atomic():
                make_feedback(trace, "thumbs", -1)
                make_score(trace, "second", 0.9)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert _signals(trace) == {
        "s": {"first": [0.1, 0.1], "second": [0.9, 0.9]},
        "f": True,
        "td": True,
    }
