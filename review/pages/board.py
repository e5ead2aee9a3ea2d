"""The queue's board: its columns with their first cards and counts, refreshed live, and
the lead's changes to a selection or a whole column (priority, assignees, taking items
back from the reviewers who hold them). Reads are :mod:`review.pages.board_selectors`;
which item sits in which column is one rule (``review.models.BOARD_COLUMN_Q``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from hitl.exceptions import DomainError
from hitl.forms import form_add_domain_error, form_error_lines
from review.models import (
    ReviewQueue,
)
from review.pages import board_selectors, lead_selectors
from review.pages.lead import LeadPageView
from review.pages.lead_forms import (
    BoardChangeForm,
)
from review.services.items import queue_items_update_each


class QueueBoardView(LeadPageView):
    """The kanban, per-assignee counts, time on task and reviews per hour. The columns
    refresh every few seconds (htmx polls ``board/live/``); the open cards can be
    selected (``static/js/lead.js`` keeps the selection across refreshes) and changed
    together through ``QueueItemsUpdateView``."""

    template = "review/lead/board.html"

    def render_board(
        self,
        queue: ReviewQueue,
        *,
        errors: list[str] | None = None,
        selected: set[int] | None = None,
        bulk: dict[str, str] | None = None,
        status: int = 200,
        form: BoardChangeForm | None = None,
    ) -> HttpResponse:
        board = board_selectors.board(queue)
        selected = selected or set()
        shown = {card["item"].pk for column in board["columns"] for card in column["cards"]}
        context = self.context(
            queue=queue,
            board=board,
            form_rules=lead_selectors.queue_form_rules(queue),
            errors=errors or [],
            selected=selected,
            selected_hidden=sorted(selected - shown),
            bulk=bulk or {"priority": "", "assignee": "keep"},
            form=form or BoardChangeForm(),
        )
        return render(self.request, self.template, context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        return self.render_board(self.queue(queue_pk))


class QueueBoardLiveView(QueueBoardView):
    template = "review/lead/_board_live.html"


# Refused items named one by one in the result, then counted.
REFUSALS_LISTED = 10


class QueueItemsUpdateView(QueueBoardView):
    """POST: a new priority and/or assignee for one card (its own form) or for the
    board's selection (``item_id`` repeated), through ``queue_items_update_each``: one
    transaction, a history row per changed item; back to the queue also takes the item
    back from whoever holds a lease on it. The result says how many changed and which
    could not (and why); bad input answers the board again with the reason and the
    selection still ticked (422, or 409 for an archived queue).

    ``column`` (all the items of an open column, not only the cards shown; the posted
    ids are then ignored) first answers a confirmation with the column's count now and
    the change in words; posted again with ``confirm``, the change applies to what the
    column holds at that moment."""

    http_method_names = ["post"]

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        queue = self.queue(queue_pk)
        form = BoardChangeForm(request.POST)
        status = 422
        result = None
        if form.is_valid():
            column = form.chosen_column()
            if column is not None and not form.cleaned_data["confirm"]:
                return self.confirm(queue, column, form)
            try:
                result = queue_items_update_each(
                    actor=self.actor,
                    queue=queue,
                    item_ids=form.item_ids(),
                    column=column,
                    **form.changes(),
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
                status = exc.status_code if exc.status_code >= 404 else 422
        if result is None:
            return self.render_board(
                queue,
                errors=form_error_lines(form),
                selected=form.selected(),
                bulk=form.shown(),
                status=status,
                form=form,
            )
        self.tell(queue, result)
        return redirect(self.url("lead-queue-board", queue_pk=queue.pk))

    def confirm(self, queue: ReviewQueue, column: str, form: BoardChangeForm) -> HttpResponse:
        """The count of the whole column now and the change in words, to confirm."""
        changes = form.changes()
        pool = dict(board_selectors.board(queue)["pool"])
        words = []
        if "priority" in changes:
            words.append(f"priority {changes['priority']}")
        if changes.get("assignees") == []:
            words.append("back to the queue (anyone in the pool; live leases taken back)")
        elif "assignees" in changes:
            who = changes["assignees"][0]
            words.append(f"assigned to {pool.get(who, f'user {who}')}")
        context = self.context(
            queue=queue,
            column=column,
            column_label=board_selectors.column_label(column),
            count=board_selectors.column_count(queue, column),
            change=" and ".join(words),
            bulk=form.shown(),
        )
        return render(self.request, "review/lead/board_confirm.html", context)

    def tell(self, queue: ReviewQueue, result: dict[str, Any]) -> None:
        changed, unchanged, refused = result["changed"], result["unchanged"], result["refused"]
        if changed:
            messages.success(self.request, f"Changed {_items(len(changed))}.")
        if result.get("taken_back"):
            taken = len(result["taken_back"])
            messages.info(
                self.request,
                f"Took {_items(taken)} back from the reviewers holding "
                f"{'it' if taken == 1 else 'them'}; their open pages say so.",
            )
        if unchanged:
            had = "already had" if len(unchanged) > 1 else "already has"
            messages.info(self.request, f"{_items(len(unchanged)).capitalize()} {had} that.")
        if refused:
            labels = board_selectors.item_labels(queue, [r["item_id"] for r in refused])
            named = [f"{labels[r['item_id']]} ({r['reason']})" for r in refused[:REFUSALS_LISTED]]
            if len(refused) > REFUSALS_LISTED:
                named.append(f"and {len(refused) - REFUSALS_LISTED} more")
            messages.warning(
                self.request, f"Could not change {_items(len(refused))}: {'; '.join(named)}."
            )


def _items(count: int) -> str:
    return f"{count} item{'' if count == 1 else 's'}"
