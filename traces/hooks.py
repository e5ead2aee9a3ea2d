"""What the trace store announces to the apps above it.

traces sits below review in the layers, so it never calls review: it sends these
signals, and review connects its receivers in ``ReviewConfig.ready()``.

Reads work the same way: review registers providers here (attachments on a trace, the
filter that says which scores a viewer may read), and the trace reads call them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import Any

from django.db.models import Q
from django.dispatch import Signal

# Sent inside the ingestion transaction with ``project`` and ``trace_ids`` (the traces a
# batch created or changed). Receivers that queue work write it to the outbox in that
# same transaction; an exception rolls the batch back.
traces_changed = Signal()


# --- reads: attachments and score visibility ---------------------------------------------
# An attachments provider takes ``trace`` and ``viewer`` (the signed-in user; None for an
# API key) and returns {"annotations": [...], "comments": [...]}: JSON-ready dicts, each
# with ``span_id`` (a span primary key or None). A fixed number of queries per trace.
TraceAttachmentsProvider = Callable[..., dict[str, list[dict[str, Any]]]]
# A score visibility provider takes ``viewer`` and returns a filter expression over
# ``traces.Score`` selecting the scores that viewer may read (``Q()``: all of them).
ScoreVisibilityProvider = Callable[[Any], Q]

# A hidden-scores provider takes ``viewer``, ``project`` and ``cap`` and returns the ids
# of the project's traces that may hold a score its visibility filter hides from that
# viewer (a superset is fine: every other trace's scores are all visible), or None when
# they are more than ``cap`` (or it cannot tell).
HiddenScoresProvider = Callable[..., "set[int] | None"]

_attachment_providers: list[TraceAttachmentsProvider] = []
_score_visibility_providers: list[ScoreVisibilityProvider] = []
_hidden_scores_providers: list[HiddenScoresProvider] = []


def register_trace_attachments(provider: TraceAttachmentsProvider) -> None:
    if provider not in _attachment_providers:
        _attachment_providers.append(provider)


def register_score_visibility(provider: ScoreVisibilityProvider) -> None:
    if provider not in _score_visibility_providers:
        _score_visibility_providers.append(provider)


def register_hidden_scores(provider: HiddenScoresProvider) -> None:
    if provider not in _hidden_scores_providers:
        _hidden_scores_providers.append(provider)


def traces_with_hidden_scores(*, viewer: Any, project: Any, cap: int) -> set[int] | None:
    """The ids of ``project``'s traces where ``viewer`` may not see every score (every
    provider's, together), or None when they are more than ``cap`` or a provider cannot
    tell. On every other trace, ``scores_visible_to(viewer)`` hides nothing."""
    if not _hidden_scores_providers:
        return None  # no one can tell where scores are hidden: nothing is assumed
    found: set[int] = set()
    for provider in _hidden_scores_providers:
        ids = provider(viewer=viewer, project=project, cap=cap)
        if ids is None:
            return None
        found |= ids
        if len(found) > cap:
            return None
    return found


def trace_attachments(*, trace: Any, viewer: Any) -> dict[str, list[dict[str, Any]]]:
    """Every provider's attachments on ``trace``, as ``viewer`` may see them."""
    found: dict[str, list[dict[str, Any]]] = {"annotations": [], "comments": []}
    for provider in _attachment_providers:
        for kind, items in provider(trace=trace, viewer=viewer).items():
            found.setdefault(kind, []).extend(items)
    return found


def viewer_of(request: Any) -> Any:
    """Who reads, for the scores and review attachments they may see: the signed-in
    person, or None for an API key or a task (which see what managers see)."""
    if request is None or getattr(request, "api_key", None) is not None:
        return None
    return request.user


def scores_visible_to(viewer: Any) -> Q:
    """The filter every read of scores applies: the scores ``viewer`` may read."""
    return reduce(operator.and_, (p(viewer) for p in _score_visibility_providers), Q())


# --- pages: actions on what a trace filter matches ----------------------------------------
# An explorer action provider takes ``membership`` (the reader's), ``project`` and
# ``query`` (the filter as a query string) and returns the actions that reader may take
# on every trace the filter matches, as [{"label": ..., "url": ...}]. The trace explorer
# links to them; the app that owns the action serves its page (review: add to a queue).
ExplorerActionProvider = Callable[..., list[dict[str, str]]]
_explorer_action_providers: list[ExplorerActionProvider] = []


def register_explorer_actions(provider: ExplorerActionProvider) -> None:
    if provider not in _explorer_action_providers:
        _explorer_action_providers.append(provider)


def explorer_actions(*, membership: Any, project: Any, query: str) -> list[dict[str, str]]:
    """Every provider's actions on the traces ``query`` matches, for ``membership``."""
    return [
        action
        for provider in _explorer_action_providers
        for action in provider(membership=membership, project=project, query=query)
    ]


# --- pages: actions on one trace ----------------------------------------------------------
@dataclass(frozen=True)
class TraceAction:
    """Something a reader may do with one trace from its page (add it to a queue,
    promote it into a dataset), offered by the app that owns it.

    The page shows a form: a choice among ``choices`` ((value, label) pairs) and, with
    ``offers_accept_output``, a box to accept the trace's output as the expected one
    (unticked unless the person ticks it). ``perform`` takes ``actor``, ``trace`` (the
    model instance), ``choice`` (one of the values) and ``accept_output``, does the work
    through the owner's services and returns what to tell the person; it raises
    ``DomainError`` with the reason it refused."""

    key: str
    label: str
    choice_label: str
    choices: list[tuple[str, str]]
    perform: Callable[..., str]
    button: str = "Add"
    offers_accept_output: bool = False
    empty_text: str = ""
    help_text: str = ""


# A trace action provider takes ``membership`` (the reader's), ``project`` and ``trace``
# and returns the ``TraceAction``s that reader may take on it (none: the page shows none).
TraceActionProvider = Callable[..., list[TraceAction]]
_trace_action_providers: list[TraceActionProvider] = []


def register_trace_actions(provider: TraceActionProvider) -> None:
    if provider not in _trace_action_providers:
        _trace_action_providers.append(provider)


def trace_actions(*, membership: Any, project: Any, trace: Any) -> list[TraceAction]:
    """Every provider's actions on ``trace`` for ``membership``."""
    return [
        action
        for provider in _trace_action_providers
        for action in provider(membership=membership, project=project, trace=trace)
    ]
