"""Each trace's average per score name (traces/score_averages.py): kept by the database
for every writer, equal to the scores' own average after every kind of write, right when
two writers meet, and what the explorer orders by for a reader who sees every score (a
blind reviewer's order still comes from the scores they may see)."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlencode

import pytest
from django.db import connection, transaction
from django.db.models import Avg, Count
from django.test import Client
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from review import services
from tests.review.helpers import add_reviewers, make_config, make_queue, make_span, make_trace
from traces import selectors
from traces.filters import parse_sort, parse_sort_cursor, sort_cursor
from traces.models import Score, Thread, Trace, TraceScoreAverage


def _score(trace: Trace, name: str, value: float | None, **fields) -> Score:
    with tenancy.tenant_scope(trace.organization_id):
        return Score.objects.create(
            project_id=trace.project_id,
            trace=trace,
            name=name,
            data_type="numeric" if value is not None else "categorical",
            value=value,
            label="" if value is not None else "yes",
            source=fields.pop("source", "llm_judge"),
            **fields,
        )


def _kept() -> dict[tuple[int, str], tuple[float, int]]:
    rows = TraceScoreAverage.unscoped_across_tenants.values_list(
        "trace_id", "name", "average", "scores"
    )
    return {(trace, name): (average, n) for trace, name, average, n in rows}


def _computed() -> dict[tuple[int, str], tuple[float, int]]:
    rows = (
        Score.unscoped_across_tenants.filter(trace__isnull=False, value__isnull=False)
        .values("trace_id", "name")
        .annotate(average=Avg("value"), n=Count("value"))
        .values_list("trace_id", "name", "average", "n")
    )
    return {(trace, name): (average, n) for trace, name, average, n in rows}


@pytest.mark.django_db
def test_every_kind_of_write_leaves_the_averages_equal_to_the_scores(tenant):
    one, two = make_trace(tenant), make_trace(tenant)
    span = make_span(one)
    a = _score(one, "correctness", 0.25)
    b = _score(one, "correctness", 0.75, span=span)  # a span's score counts for its trace
    _score(one, "tone", None)  # a label alone: no average
    assert _kept() == _computed() == {(one.pk, "correctness"): (0.5, 2)}, "one by one"
    with tenancy.tenant_scope(tenant.organization.pk):
        Score.objects.bulk_create(
            Score(organization=tenant.organization, project=tenant.project, trace=trace,
                  name="correctness", data_type="numeric", value=value, source="code")
            for trace, value in ((two, 1.0), (two, 0.5), (one, 0.5))
        )  # fmt: skip
    in_bulk = {(one.pk, "correctness"): (0.5, 3), (two.pk, "correctness"): (0.75, 2)}
    assert _kept() == _computed() == in_bulk, "in bulk"

    with tenancy.tenant_scope(tenant.organization.pk):
        Score.objects.filter(pk=a.pk).update(value=1.0)
        assert _kept()[(one.pk, "correctness")] == (0.75, 3), "a value changed"
        Score.objects.filter(pk=b.pk).update(name="helpfulness")
        assert _kept() == _computed(), "a name changed"
        assert _kept()[(one.pk, "helpfulness")] == (0.75, 1)
        Score.objects.filter(pk=b.pk).update(trace=two)
        assert (one.pk, "helpfulness") not in _kept(), "moved to another trace"
        assert _kept() == _computed()
        Score.objects.filter(pk=b.pk).update(value=None, label="n/a", data_type="categorical")
        assert (two.pk, "helpfulness") not in _kept(), "a value removed"
        assert _kept() == _computed()
        Score.objects.filter(trace=two, name="correctness").update(value=0.0)
        assert _kept()[(two.pk, "correctness")] == (0.0, 2), "many rows in one statement"
        Score.objects.filter(pk=a.pk).delete()
        assert _kept() == _computed() and _kept()[(one.pk, "correctness")] == (0.5, 1)
        one.delete()  # with its scores and their averages
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no average left pointing at it
        assert _kept() == _computed() == {(two.pk, "correctness"): (0.0, 2)}


@pytest.mark.django_db(transaction=True)
def test_two_writers_of_one_average_both_count(tenant):
    """The second writer waits for the first's lock, then averages what the first
    committed: an average computed from the second's snapshot alone would miss it."""
    trace = make_trace(tenant)
    _score(trace, "correctness", 0.0)
    waiting = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            waiting.set()
            _score(trace, "correctness", 1.0)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    with transaction.atomic():
        _score(trace, "correctness", 0.5)
        thread = threading.Thread(target=second)
        thread.start()
        waiting.wait(10)
        with connection.cursor() as cursor:  # until the second writer waits for our lock
            for _ in range(200):
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the second writer never waited for the first")
    thread.join(30)
    assert not errors, errors
    assert _kept() == {(trace.pk, "correctness"): (0.5, 3)} == _computed()


def _blind_subject(tenant, *, traces=(), threads=()):
    """A pool reviewer of a blind queue holding items on ``traces`` and ``threads``: the
    others' scores on them are not theirs to see until they answer."""
    numeric = make_config(tenant)
    other, subject = add_reviewers(tenant, 2)
    queue = make_queue(
        tenant, configs=[numeric], reviewers=[other, subject], overlap=2, blind_mode=True
    )
    actor = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        for trace in traces:
            services.queue_item_add(actor=actor, queue=queue, trace_id=trace.pk)
        for thread in threads:
            services.queue_item_add(actor=actor, queue=queue, thread_id=thread.pk)
    return subject


@pytest.mark.django_db
def test_the_explorer_orders_by_kept_averages_and_a_blind_reader_by_what_they_see(tenant):
    low, high, none = make_trace(tenant), make_trace(tenant), make_trace(tenant)
    _score(low, "correctness", 0.1)
    _score(high, "correctness", 0.9)
    subject = _blind_subject(tenant, traces=[high])
    with tenancy.tenant_scope(tenant.organization.pk):
        traces = Trace.objects.filter(project=tenant.project)
        sort = parse_sort("-score:correctness")
        for viewer, expected in (
            (tenant.owner, [high, low, none]),
            # Blind on the item of ``high``: its judge score is not theirs to see.
            (subject, [low, none, high]),
        ):
            plain = list(selectors.trace_list_sorted(traces, sort=sort, viewer=viewer))
            page = selectors.trace_list_page(
                traces, sort=sort, limit=10, viewer=viewer, project=tenant.project
            )
            assert [t.pk for t in page] == [t.pk for t in plain] == [t.pk for t in expected]
            assert [t.sort_value for t in page] == [t.sort_value for t in plain]


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["-score:correctness", "score:correctness"])
def test_a_blind_readers_pages_merge_kept_and_seen_averages_as_the_plain_order(tenant, key):
    """Kept averages where the reader sees every score, averages of what they see on
    the traces their blind items aim at (directly, or through a thread), their own
    scores there included: every page from every cursor equals the plain order."""
    with tenancy.tenant_scope(tenant.organization.pk):
        thread = Thread.objects.create(project=tenant.project, external_id="talk")
    traces = [make_trace(tenant) for _ in range(6)] + [make_trace(tenant, thread=thread)]
    for n, trace in enumerate(traces):
        _score(trace, "correctness", (n % 4) / 4)  # ties on purpose
        _score(trace, "correctness", 0.5)
    aimed, in_thread = traces[1], traces[-1]
    subject = _blind_subject(tenant, traces=[aimed], threads=[thread])
    _score(aimed, "correctness", 1.0, source="human", author=subject)  # their own answer
    sort = parse_sort(key)
    with tenancy.tenant_scope(tenant.organization.pk):
        traces_of = Trace.objects.filter(project=tenant.project)
        plain = list(selectors.trace_list_sorted(traces_of, sort=sort, viewer=subject))
        values = {t.pk: t.sort_value for t in plain}
        assert values[aimed.pk] == 1.0 and values[in_thread.pk] is None  # what they see
        for n, row in enumerate([None, *plain]):
            after = None
            if row is not None:
                after = parse_sort_cursor(sort, sort_cursor(sort, row.sort_value, row.pk))
            page = selectors.trace_list_page(
                traces_of, sort=sort, limit=2, after=after, viewer=subject, project=tenant.project
            )
            assert [t.pk for t in page] == [t.pk for t in plain[n : n + 2]], n


@pytest.mark.django_db
def test_an_order_computed_past_its_budget_is_refused_beside_the_sort(
    tenant, client_for, monkeypatch
):
    """A blind reader with more traces of hidden scores than the cap has every average
    computed from the scores; past its time budget the page says why beside the sort
    and the API answers 400 with the same reason, while the owner's order (the kept
    averages) is untouched by the budget."""
    traces = [make_trace(tenant) for _ in range(40)]
    with tenancy.tenant_scope(tenant.organization.pk):
        Score.objects.bulk_create(
            Score(organization=tenant.organization, project=tenant.project, trace=trace,
                  name="correctness", data_type="numeric", value=(n % 100) / 100,
                  source="llm_judge")
            for trace in traces for n in range(150)
        )  # fmt: skip
    subject = _blind_subject(tenant, traces=[traces[0]])
    # Past the cap of traces with hidden scores, every average is computed: in 1 ms,
    # 6,000 scores are too many.
    monkeypatch.setattr(selectors, "HIDDEN_TRACES_CAP", 0)
    monkeypatch.setattr(selectors, "SCORE_SORT_BUDGET_MS", 1)
    query = urlencode({"sort": "-score:correctness"})
    explorer = reverse(
        "traces-explorer",
        kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug},
    )
    api = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/traces/"

    page = Client()
    page.force_login(subject)
    refused = page.get(f"{explorer}?{query}")
    assert refused.status_code == 200
    assert "took longer than 0.001 s" in refused.content.decode()
    answer = client_for(subject).get(f"{api}?{query}")
    assert answer.status_code == 400
    assert "took longer" in str(answer.json()["error"]["details"]["sort"])
    # The session is left as it was: the next read has no budget of 1 ms.
    assert client_for(subject).get(api).status_code == 200

    owner = client_for(tenant.owner).get(f"{api}?{query}")
    assert owner.status_code == 200 and len(owner.json()["results"]) == 40


@pytest.mark.django_db
def test_a_blind_reader_is_offered_the_names_of_scores_they_may_see(tenant):
    """The filter builder's known names: one that only a hidden trace holds is not
    offered, one with a score the reader may see is, their own included."""
    seen, hidden = make_trace(tenant), make_trace(tenant)
    _score(seen, "correctness", 0.5)
    _score(hidden, "correctness", 0.1)
    _score(hidden, "secret-judge", 0.9)
    subject = _blind_subject(tenant, traces=[hidden])
    with tenancy.tenant_scope(tenant.organization.pk):
        names = selectors.score_names(project=tenant.project, viewer=subject)
        assert names == ["correctness"]
        assert selectors.score_names(project=tenant.project, viewer=tenant.owner) == [
            "correctness",
            "secret-judge",
        ]
    _score(hidden, "own-note", 1.0, source="human", author=subject)
    with tenancy.tenant_scope(tenant.organization.pk):
        names = selectors.score_names(project=tenant.project, viewer=subject)
        assert names == ["correctness", "own-note"]
