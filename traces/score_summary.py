"""The score summary, ``Trace.signals`` (kept by database triggers; not Django signals):
what a trace's scores and end-user feedback say, kept on the trace row.

``Trace.signals`` is a small JSON object that PostgreSQL keeps up to date with triggers
on ``traces_score`` and ``traces_feedback`` (so every writer is covered: ingestion, human
review, the admin, bulk SQL), for example::

    {"s": {"correctness": [0.31, 0.74]},   # automated scores: [lowest, highest] per name
     "h": true,                             # a person has scored it
     "f": true, "tu": true, "td": true,     # any feedback, a thumbs up, a thumbs down
     "r": [2, 5]}                           # end-user ratings: [lowest, highest]

It exists so the trace list can walk the newest traces and discard, from the row it is
already reading, those that cannot match a condition on scores or feedback, instead of
probing the score and feedback tables for every trace it passes: two common conditions
that are rare together (low correctness *and* a thumbs down) otherwise cost thousands
of index probes per page.

**A superset, never a subset.** The triggers only widen a trace's signals (a merge: a
flag once set stays, a range only grows), so concurrent writers can never lose each
other's facts, and a deleted or changed score or feedback row leaves a signal that may
say more than is true today. The filter therefore uses signals only to *skip* traces;
the exact condition (an ``EXISTS`` on the score or feedback rows, with the reader's
visibility) is always applied as well. A trace without signals (``NULL``) has no scores
or feedback on it.
"""

from __future__ import annotations

from django.db.models import BooleanField, ExpressionWrapper, FloatField, Q
from django.db.models.expressions import Value
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
)

from traces.models import AUTOMATED_SCORE_SOURCES, ScoreSource

_COMPARE = {
    "<": LessThan,
    "<=": LessThanOrEqual,
    ">": GreaterThan,
    ">=": GreaterThanOrEqual,
    "=": Exact,
}
HUMAN_SOURCE = ScoreSource.HUMAN.value

# --- SQL: the merge, what a set of rows says, the triggers --------------------------------
MERGE_FUNCTION = """
CREATE OR REPLACE FUNCTION traces_signals_merge(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE
    (a || b)
    || CASE WHEN a ? 'r' AND b ? 'r' THEN jsonb_build_object('r', jsonb_build_array(
         least((a #>> '{r,0}')::float8, (b #>> '{r,0}')::float8),
         greatest((a #>> '{r,1}')::float8, (b #>> '{r,1}')::float8))) ELSE '{}'::jsonb END
    || CASE WHEN a ? 's' AND b ? 's' THEN jsonb_build_object('s', (
         SELECT jsonb_object_agg(k, CASE WHEN x.v IS NULL THEN y.v WHEN y.v IS NULL THEN x.v
           ELSE jsonb_build_array(least((x.v ->> 0)::float8, (y.v ->> 0)::float8),
                                  greatest((x.v ->> 1)::float8, (y.v ->> 1)::float8)) END)
         FROM jsonb_each(a -> 's') AS x(k, v) FULL JOIN jsonb_each(b -> 's') AS y(k, v)
           USING (k)))
       ELSE '{}'::jsonb END
  END
$$
"""


def score_signals_sql(rows: str) -> str:
    """``SELECT trace_id, signals`` of the score rows in the relation ``rows``."""
    automated = ", ".join(f"'{s.value}'" for s in AUTOMATED_SCORE_SOURCES)
    return (
        "SELECT trace_id, jsonb_strip_nulls(jsonb_build_object("  # noqa: S608 (constants)
        "  's', jsonb_object_agg(name, jsonb_build_array(lo, hi)) FILTER (WHERE automated),"
        "  'h', CASE WHEN bool_or(human) THEN true END)) AS signals "
        f"FROM (SELECT trace_id, name, source IN ({automated}) AS automated, "
        f"        source = '{HUMAN_SOURCE}' AS human, min(value) AS lo, max(value) AS hi "
        f"      FROM {rows} WHERE trace_id IS NOT NULL GROUP BY 1, 2, 3, 4) AS per_name "
        "GROUP BY trace_id"
    )


def feedback_signals_sql(rows: str) -> str:
    """``SELECT trace_id, signals`` of the feedback rows in the relation ``rows``."""
    return (
        "SELECT trace_id, jsonb_strip_nulls(jsonb_build_object("  # noqa: S608 (constants)
        "  'f', true,"
        "  'tu', CASE WHEN bool_or(kind = 'thumbs' AND value > 0) THEN true END,"
        "  'td', CASE WHEN bool_or(kind = 'thumbs' AND value < 0) THEN true END,"
        "  'r', CASE WHEN bool_or(kind = 'rating') THEN jsonb_build_array("
        "         min(value) FILTER (WHERE kind = 'rating'),"
        "         max(value) FILTER (WHERE kind = 'rating')) END)) AS signals "
        f"FROM {rows} WHERE trace_id IS NOT NULL GROUP BY trace_id"
    )


def merge_into_traces_sql(signals_of: str) -> str:
    """Merges the ``(trace_id, signals)`` rows of the query ``signals_of`` into their
    traces, leaving a trace whose signals would not change untouched."""
    return (
        "UPDATE traces_trace t SET signals = traces_signals_merge(t.signals, n.signals) "  # noqa: S608
        f"FROM ({signals_of}) AS n WHERE t.id = n.trace_id "
        "AND t.signals IS DISTINCT FROM traces_signals_merge(t.signals, n.signals)"
    )


def _trigger_function(table: str, signals_of: str) -> str:
    # The trace rows are locked in id order first: two statements touching the same
    # traces then wait for each other instead of deadlocking. Table names are constants.
    return (
        f"CREATE OR REPLACE FUNCTION {table}_signals() RETURNS trigger "  # noqa: S608
        "LANGUAGE plpgsql AS $$ BEGIN "
        "PERFORM 1 FROM traces_trace t "
        "WHERE t.id IN (SELECT trace_id FROM new_rows WHERE trace_id IS NOT NULL) "
        "ORDER BY t.id FOR NO KEY UPDATE OF t; "
        f"{merge_into_traces_sql(signals_of)}; "
        "RETURN NULL; END $$"
    )


def install_sql() -> list[str]:
    """The merge function, and statement-level triggers (one per table and event: a
    trigger with a transition table may have only one event) that merge what inserted
    or updated rows say into their traces."""
    statements = [MERGE_FUNCTION]
    for table, signals_of in (
        ("traces_score", score_signals_sql("new_rows")),
        ("traces_feedback", feedback_signals_sql("new_rows")),
    ):
        statements.append(_trigger_function(table, signals_of))
        for event in ("insert", "update"):
            statements.append(
                f"CREATE TRIGGER {table}_signals_{event} AFTER {event.upper()} ON {table} "
                "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
                f"EXECUTE FUNCTION {table}_signals()"
            )
    return statements


def uninstall_sql() -> list[str]:
    statements = []
    for table in ("traces_score", "traces_feedback"):
        for event in ("insert", "update"):
            statements.append(f"DROP TRIGGER IF EXISTS {table}_signals_{event} ON {table}")
        statements.append(f"DROP FUNCTION IF EXISTS {table}_signals()")
    statements.append("DROP FUNCTION IF EXISTS traces_signals_merge(jsonb, jsonb)")
    return statements


def rebuild_sql() -> list[str]:
    """Signals recomputed from every score and feedback row (the migration's backfill;
    also what would drop the stale part left by deleted rows)."""
    return [
        "UPDATE traces_trace SET signals = NULL WHERE signals IS NOT NULL",
        merge_into_traces_sql(score_signals_sql("traces_score")),
        merge_into_traces_sql(feedback_signals_sql("traces_feedback")),
    ]


# --- the filter's side: conditions a trace's signals must meet to be worth probing ------
def _neutral(condition: Q | ExpressionWrapper) -> Q:
    """``condition`` as ``COALESCE(condition, false)``: PostgreSQL has no statistics for
    JSON tests and would guess them very selective (0.1% for ``?``), then multiply that
    with the exact ``EXISTS`` it duplicates and choose a full scan and sort over the
    newest-first walk. A ``COALESCE`` it estimates at an even 50%, which keeps the walk."""
    wrapped = Coalesce(
        ExpressionWrapper(condition, output_field=BooleanField()),
        Value(False),
        output_field=BooleanField(),
    )
    return Q(wrapped)


def _bound(path: tuple[str, ...], index: int) -> Cast:
    # Nested keys compile to one ``#>>`` path (a parameter), so any score name is safe.
    expression: KeyTransform | str = "signals"
    for key in path:
        expression = KeyTransform(key, expression)
    return Cast(KeyTextTransform(str(index), expression), FloatField())


def score_may_match(name: str, operator: str | None, number: float | None) -> Q:
    """Traces whose signals allow an automated score ``name`` meeting the condition."""
    low, high = _bound(("s", name), 0), _bound(("s", name), 1)
    if number is not None and operator in _COMPARE:
        if operator in ("<", "<="):
            return _neutral(Q(_COMPARE[operator](low, number)))
        if operator in (">", ">="):
            return _neutral(Q(_COMPARE[operator](high, number)))
        return _neutral(Q(LessThanOrEqual(low, number)) & Q(GreaterThanOrEqual(high, number)))
    # A bare name, a label, or != : the name must be there.
    return _neutral(Q(signals__s__has_key=name))


def feedback_may_match(kind: str) -> Q:
    """``kind``: "any", "thumbs_up" or "thumbs_down"."""
    key = {"any": "f", "thumbs_up": "tu", "thumbs_down": "td"}[kind]
    return _neutral(Q(signals__has_key=key))


def rating_may_match(low: float | None, high: float | None) -> Q:
    """Traces whose signals allow an end-user rating between ``low`` and ``high``."""
    condition = Q(signals__has_key="r")
    if low is not None:
        condition &= Q(GreaterThanOrEqual(_bound(("r",), 1), low))
    if high is not None:
        condition &= Q(LessThanOrEqual(_bound(("r",), 0), high))
    return _neutral(condition)


def human_scored() -> Q:
    return _neutral(Q(signals__has_key="h"))
