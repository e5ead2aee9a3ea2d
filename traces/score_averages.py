"""Each trace's average per score name (``TraceScoreAverage``), kept by database triggers
on ``traces_score``: what the explorer orders by when a lead sorts by a score.

Sorting by a score's average used to group the project's scores of that name by trace
on every page (1.3 to 1.5 s at 10M spans); with the averages kept in their own rows, a
page walks the index ``(project, name, average, trace)`` from its cursor and reads a few
entries, as the column orders do.

**Exact, never drifting.** A trigger does not add deltas to a running sum (floating-point
sums drift as rows are changed and removed); it recomputes ``avg(value)`` of the pairs
(trace, name) a statement touched from the score rows themselves, so a stored average is
what the reference order (``traces.selectors.trace_list_sorted``) computes.

**Concurrent writers.** Every statement first locks the averages of the pairs it touched
(creating the missing ones), in (trace, name) order, and only then, as a second
statement, reads the scores: under READ COMMITTED a statement inside a PL/pgSQL function
takes a fresh snapshot, so the recomputation sees every score committed by a writer it
waited for, and two writers of one pair can never leave the older average behind. A pair
left without a numeric score loses its row.

One trigger per event (a trigger with transition tables takes one event), statement-level
so bulk writes (ingestion's ``INSERT ... SELECT``, ``COPY``, ``UPDATE`` of many rows) pay
once per statement. Deletes only update rows that exist: a trace deleted with its scores
takes its averages with it (the foreign key, in Django's delete), and its scores' delete
must not create them again.
"""

from __future__ import annotations

TABLE = "traces_tracescoreaverage"


def _pairs(rows: str) -> str:
    return f"SELECT DISTINCT trace_id, name FROM {rows} WHERE trace_id IS NOT NULL"  # noqa: S608


def recompute_sql(pairs: str) -> str:
    """Sets each pair of the query ``pairs`` (``trace_id, name``) to the average of its
    numeric scores as stored now."""
    return (
        f"UPDATE {TABLE} a SET average = s.average, scores = s.scores "  # noqa: S608
        "FROM (SELECT p.trace_id, p.name, avg(sc.value) AS average, count(sc.value) AS scores "
        f"      FROM ({pairs}) AS p LEFT JOIN traces_score sc "
        "        ON sc.trace_id = p.trace_id AND sc.name = p.name AND sc.value IS NOT NULL "
        "      GROUP BY p.trace_id, p.name) AS s "
        "WHERE a.trace_id = s.trace_id AND a.name = s.name"
    )


def _function(event: str) -> str:
    lock_or_create = (
        # New pairs get a row (no average yet) and every pair's row is locked, in order.
        f"INSERT INTO {TABLE} AS a (organization_id, project_id, trace_id, name, average, scores) "  # noqa: S608
        "SELECT DISTINCT ON (trace_id, name) organization_id, project_id, trace_id, name, "
        "       NULL, 0 FROM new_rows WHERE trace_id IS NOT NULL AND value IS NOT NULL "
        "ORDER BY trace_id, name "
        "ON CONFLICT (trace_id, name) DO UPDATE SET scores = a.scores; "
    )
    lock_existing = (
        f"PERFORM 1 FROM {TABLE} a WHERE (a.trace_id, a.name) IN ({_pairs('old_rows')}) "
        "ORDER BY a.trace_id, a.name FOR UPDATE OF a; "
    )
    if event == "insert":
        steps, pairs = lock_or_create, _pairs("new_rows")
    elif event == "update":
        steps = lock_or_create + lock_existing
        pairs = f"{_pairs('new_rows')} UNION {_pairs('old_rows')}"
    else:
        steps, pairs = lock_existing, _pairs("old_rows")
    return (
        f"CREATE OR REPLACE FUNCTION traces_score_averages_{event}() RETURNS trigger "  # noqa: S608 (constants)
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"{steps}"
        f"{recompute_sql(pairs)}; "
        f"DELETE FROM {TABLE} a WHERE a.scores = 0 AND (a.trace_id, a.name) IN ({pairs}); "
        "RETURN NULL; END $$"
    )


_TRANSITIONS = {
    "insert": "NEW TABLE AS new_rows",
    "update": "NEW TABLE AS new_rows OLD TABLE AS old_rows",
    "delete": "OLD TABLE AS old_rows",
}


def install_sql() -> list[str]:
    """The three functions and their statement-level triggers on ``traces_score``."""
    statements = []
    for event, transitions in _TRANSITIONS.items():
        statements.append(_function(event))
        statements.append(
            f"CREATE TRIGGER traces_score_averages_{event} AFTER {event.upper()} "
            f"ON traces_score REFERENCING {transitions} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION traces_score_averages_{event}()"
        )
    return statements


def uninstall_sql() -> list[str]:
    statements = []
    for event in _TRANSITIONS:
        statements.append(f"DROP TRIGGER IF EXISTS traces_score_averages_{event} ON traces_score")
        statements.append(f"DROP FUNCTION IF EXISTS traces_score_averages_{event}()")
    return statements


def rebuild_sql() -> list[str]:
    """Every average recomputed from the scores (the migration's backfill)."""
    return [
        f"DELETE FROM {TABLE}",  # noqa: S608
        f"INSERT INTO {TABLE} (organization_id, project_id, trace_id, name, average, scores) "  # noqa: S608
        "SELECT organization_id, project_id, trace_id, name, avg(value), count(value) "
        "FROM traces_score WHERE trace_id IS NOT NULL AND value IS NOT NULL "
        "GROUP BY organization_id, project_id, trace_id, name",
    ]
