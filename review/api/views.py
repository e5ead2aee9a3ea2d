"""Review endpoints: thin views over review.services and review.selectors."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from hitl.api.history import HistoryActionMixin
from hitl.api.pagination import CreatedCursorPagination
from hitl.api.views import validated
from hitl.exceptions import DomainError, NotFound
from projects.api.bases import ProjectScopedViewSet
from projects.models import ALL_ROLES, MANAGE_ROLES, REVIEW_ROLES
from review import filters, selectors, services, visibility
from review.api import serializers as s
from review.comparison import services as comparison_services
from review.models import (
    Adjudication,
    Annotation,
    Assignment,
    Comment,
    ItemTarget,
    QueueItem,
    ReviewQueue,
    RoutingRule,
    RoutingStrategy,
    RoutingTarget,
    ScoreConfig,
)
from review.pages import lead_selectors
from review.services.claims import item_take_back
from review.services.routing_strategies import DraftSpec, strategy_check
from review.services.thread_routing import thread_rule_check, thread_rule_preview
from review.templatetags.review_pages import input_snippet
from traces import selectors as trace_selectors
from traces.refs import target_row_ids


class LeasedCursorPagination(CreatedCursorPagination):
    ordering = ("-leased_at", "-id")


class SubmittedCursorPagination(CreatedCursorPagination):
    ordering = ("-submitted_at", "-id")


# --- score configs ---------------------------------------------------------------------------


class ScoreConfigViewSet(
    HistoryActionMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet
):
    """Score configs (questions with rubrics). Every edit makes a new version."""

    scoped_model = ScoreConfig
    serializer_class = s.ScoreConfigSerializer
    filterset_class = filters.ScoreConfigFilter
    read_roles = ALL_ROLES
    write_roles = MANAGE_ROLES

    @extend_schema(request=s.ScoreConfigCreateSerializer, responses={201: s.ScoreConfigSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.ScoreConfigCreateSerializer)
        config = services.score_config_create(actor=self.actor, project=self.project, **data)
        return Response(s.ScoreConfigSerializer(config).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ScoreConfigUpdateSerializer, responses=s.ScoreConfigSerializer)
    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.ScoreConfigUpdateSerializer)
        config = services.score_config_update(actor=self.actor, config=self.get_object(), **data)
        return Response(s.ScoreConfigSerializer(config).data)

    @extend_schema(request=None, responses=s.ScoreConfigSerializer)
    def destroy(self, request: Request, **kwargs: Any) -> Response:
        """Archives the config: it leaves new forms, and every answer that used it stays."""
        config = services.score_config_archive(actor=self.actor, config=self.get_object())
        return Response(s.ScoreConfigSerializer(config).data)

    @extend_schema(responses=s.ScoreConfigVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, **kwargs: Any) -> Response:
        config = self.get_object()
        return Response(
            s.ScoreConfigVersionSerializer(config.versions.order_by("version"), many=True).data
        )


# --- queues ----------------------------------------------------------------------------------


class QueueViewSet(
    HistoryActionMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet
):
    """Review queues: form, reviewer pool, overlap, strategy, blind mode, lease time."""

    scoped_model = ReviewQueue
    serializer_class = s.QueueSerializer
    filterset_class = filters.QueueFilter
    read_roles = ALL_ROLES
    write_roles = MANAGE_ROLES
    action_roles = {"claim": REVIEW_ROLES}

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.prefetch_related(
            "form_fields__config", "reviewers__membership__user"
        ).order_by("-priority", "-created_at", "-id")

    @extend_schema(request=s.QueueCreateSerializer, responses={201: s.QueueSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.QueueCreateSerializer)
        queue = services.queue_create(actor=self.actor, project=self.project, **data)
        return Response(
            s.QueueSerializer(self.get_queryset().get(pk=queue.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=s.QueueUpdateSerializer, responses=s.QueueSerializer)
    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.QueueUpdateSerializer)
        queue = services.queue_update(actor=self.actor, queue=self.get_object(), **data)
        return Response(s.QueueSerializer(self.get_queryset().get(pk=queue.pk)).data)

    @extend_schema(request=None, responses=s.QueueSerializer)
    def destroy(self, request: Request, **kwargs: Any) -> Response:
        """Archives the queue; its items, reviews and history stay."""
        queue = services.queue_archive(actor=self.actor, queue=self.get_object())
        return Response(s.QueueSerializer(self.get_queryset().get(pk=queue.pk)).data)

    @extend_schema(
        request=None,
        responses={200: s.ClaimSerializer, 204: None},
        description="Leases the next item for you (priority, then age; never one you "
        "already had). 204 when nothing is left for you. 403 outside the reviewer pool.",
    )
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, **kwargs: Any) -> Response:
        queue = self.get_object()
        assignment = services.queue_claim_next(actor=self.actor, queue=queue)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        item = (
            QueueItem.objects.select_related("queue", "trace", "span", "thread")
            .filter(pk=assignment.item_id)
            .get()
        )
        detail = selectors.item_view(item=item, user=self.actor.user)
        return Response(
            {
                "assignment": s.AssignmentSerializer(assignment).data,
                "item": s.QueueItemDetailSerializer(item, context={"detail": detail}).data,
            }
        )

    @extend_schema(responses=s.BoardSerializer)
    @action(detail=True, methods=["get"])
    def board(self, request: Request, **kwargs: Any) -> Response:
        """Item counts per kanban column and per assignee (done, in progress, pending)."""
        return Response(selectors.queue_board(queue=self.get_object()))


# --- items -----------------------------------------------------------------------------------

# The relations the serializers answer by their external ids (one join, not a query a row).
TARGETS = ("trace", "span", "thread")


def _external_ids(data: dict[str, Any]) -> dict[str, str | None]:
    """Takes the client's trace, span and thread ids out of ``data`` (the row ids
    resolved from them go back in; traces.refs)."""
    return {name: data.pop(name, None) for name in ("trace_id", "span_id", "thread_id")}


class QueueItemViewSet(HistoryActionMixin, mixins.ListModelMixin, ProjectScopedViewSet):
    """The items of one queue. Reading an item applies blind mode."""

    scoped_model = QueueItem
    serializer_class = s.QueueItemSerializer
    filterset_class = filters.QueueItemFilter
    read_roles = ALL_ROLES
    write_roles = MANAGE_ROLES
    action_roles = {"adjudicate": REVIEW_ROLES}

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(queue_id=self.kwargs["queue_pk"]).select_related(*TARGETS)

    def _queue(self) -> ReviewQueue:
        queue = ReviewQueue.objects.filter(project=self.project, pk=self.kwargs["queue_pk"]).first()
        if queue is None:
            raise NotFound("Queue not found.")
        return queue

    def list(self, request: Request, **kwargs: Any) -> Response:
        self._queue()
        return super().list(request, **kwargs)

    @extend_schema(responses=s.QueueItemDetailSerializer)
    def retrieve(self, request: Request, **kwargs: Any) -> Response:
        item = self.get_object()
        item = QueueItem.objects.select_related("queue", "trace", "span", "thread").get(pk=item.pk)
        detail = selectors.item_view(item=item, user=self.actor.user)
        return Response(s.QueueItemDetailSerializer(item, context={"detail": detail}).data)

    @extend_schema(request=s.ItemCreateSerializer, responses={201: s.QueueItemSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        """Adds one trace, span, thread or dataset item by hand (409 if it is already
        queued)."""
        data = dict(validated(request, s.ItemCreateSerializer))
        data.update(target_row_ids(self.project, **_external_ids(data)))
        item = services.queue_item_add(actor=self.actor, queue=self._queue(), **data)
        return Response(s.QueueItemSerializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.BulkAddSerializer, responses=s.BulkAddResultSerializer)
    @action(detail=False, methods=["post"], url_path="bulk-add")
    def bulk_add(self, request: Request, **kwargs: Any) -> Response:
        """Adds every trace the filter matches, across all pages; queued ones are skipped."""
        data = dict(validated(request, s.BulkAddSerializer))
        result = services.queue_items_add_from_filter(
            actor=self.actor, queue=self._queue(), params=data.pop("filter"), **data
        )
        return Response(result)

    @extend_schema(request=s.BulkUpdateSerializer, responses=s.QueueItemSerializer(many=True))
    @action(detail=False, methods=["post"], url_path="bulk-update")
    def bulk_update(self, request: Request, **kwargs: Any) -> Response:
        """Re-prioritizes or assigns many items (manual assignment), with history."""
        data = validated(request, s.BulkUpdateSerializer)
        items = services.queue_items_update(actor=self.actor, queue=self._queue(), **data)
        return Response(s.QueueItemSerializer(items, many=True).data)

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        """Removes an item nobody has reviewed yet."""
        services.queue_item_remove(actor=self.actor, item=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.AdjudicateSerializer, responses={201: s.AdjudicationSerializer})
    @action(detail=True, methods=["post"])
    def adjudicate(self, request: Request, **kwargs: Any) -> Response:
        """A senior's final decision on a disputed or audit-sampled item."""
        data = validated(request, s.AdjudicateSerializer)
        item = self.get_object()
        preferences = data.pop("preferences", None)
        if item.target_type == ItemTarget.COMPARISON:
            # A comparison item is decided with its preferences (the comparison wing).
            if preferences is None or "values" in data or data["expected_output"] is not None:
                raise DomainError(
                    "A comparison item is decided with preferences (and an explanation).",
                    details={"preferences": ["required for a comparison item"]},
                )
            adjudication = comparison_services.comparison_adjudicate(
                actor=self.actor,
                item=item,
                membership=self.membership,
                answers=preferences,
                explanation=data["explanation"],
            )
        elif preferences is not None or "values" not in data:
            wrong = "preferences" if preferences is not None else "values"
            reason = "only for a comparison item" if preferences is not None else "required"
            raise DomainError("Decide this item with values.", details={wrong: [reason]})
        else:
            adjudication = services.item_adjudicate(
                actor=self.actor, item=item, membership=self.membership, **data
            )
        return Response(s.AdjudicationSerializer(adjudication).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.TakeBackSerializer, responses=s.AssignmentSerializer(many=True))
    @action(detail=True, methods=["post"], url_path="take-back")
    def take_back(self, request: Request, **kwargs: Any) -> Response:
        """Ends the live leases on the item (every holder's, or ``reviewer_id``'s): it is
        claimable again at once, and the holder's submit answers 409
        ``lease_taken_back`` naming who took it back. Owners and admins, signed in;
        409 ``no_live_lease`` when nobody holds it. Returns the leases ended."""
        data = validated(request, s.TakeBackSerializer)
        ended = item_take_back(actor=self.actor, item=self.get_object(), **data)
        return Response(s.AssignmentSerializer(ended, many=True).data)


# --- assignments -------------------------------------------------------------------------------


class AssignmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    """Your leases: submit answers, skip with a reason, or release."""

    scoped_model = Assignment
    serializer_class = s.AssignmentSerializer
    pagination_class = LeasedCursorPagination
    filterset_class = filters.AssignmentFilter
    read_roles = REVIEW_ROLES
    write_roles = REVIEW_ROLES

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        user = self.actor.user  # None for API keys, which hold no leases
        if user is None:
            return queryset.none()
        return queryset.filter(queue__project=self.project, reviewer=user)

    def narrow_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset  # assignments carry no project column; narrowed via the queue

    @extend_schema(request=s.AnswersSerializer, responses={201: s.AnnotationSerializer})
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, **kwargs: Any) -> Response:
        """Submits your answers on a live lease (409 if it expired, 403 if not yours)."""
        data = validated(request, s.AnswersSerializer)
        annotation = services.assignment_submit(
            actor=self.actor, assignment_id=self.get_object().pk, **data
        )
        return Response(s.AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.SkipSerializer, responses=s.AssignmentSerializer)
    @action(detail=True, methods=["post"])
    def skip(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.SkipSerializer)
        assignment = services.assignment_skip(
            actor=self.actor,
            assignment_id=self.get_object().pk,
            reason=data["reason"],
        )
        return Response(s.AssignmentSerializer(assignment).data)

    @extend_schema(request=None, responses=s.AssignmentSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, **kwargs: Any) -> Response:
        assignment = services.assignment_release(
            actor=self.actor, assignment_id=self.get_object().pk
        )
        return Response(s.AssignmentSerializer(assignment).data)


# --- annotations and adjudications ------------------------------------------------------------


class AnnotationViewSet(
    HistoryActionMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet
):
    """Submitted answers, as the blind rule (``review.visibility``) lets you see them:
    in a blind queue's pool, others' answers on an item's target stay hidden until you
    have submitted yours. History follows the same rule (it is read through the list)."""

    scoped_model = Annotation
    serializer_class = s.AnnotationSerializer
    pagination_class = SubmittedCursorPagination
    filterset_class = filters.AnnotationFilter
    read_roles = ALL_ROLES
    write_roles = REVIEW_ROLES

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(visibility.annotations_visible_to(self.actor.user)).select_related(
            *TARGETS
        )

    @extend_schema(request=s.AnnotationUpdateSerializer, responses=s.AnnotationSerializer)
    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        """Edits your annotation; send the version you read (stale: 409)."""
        data = validated(request, s.AnnotationUpdateSerializer)
        fields = dict(data)
        annotation = services.annotation_update(
            actor=self.actor,
            annotation_id=self.get_object().pk,
            expected_version=fields.pop("version"),
            **fields,
        )
        return Response(s.AnnotationSerializer(annotation).data)


class AdjudicationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    scoped_model = Adjudication
    serializer_class = s.AdjudicationSerializer
    filterset_class = filters.AdjudicationFilter
    read_roles = ALL_ROLES

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(visibility.adjudications_visible_to(self.actor.user))


# --- comments ----------------------------------------------------------------------------------


class CommentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    """Comments on traces, spans and queue items, with @mentions (write @email)."""

    scoped_model = Comment
    serializer_class = s.CommentSerializer
    filterset_class = filters.CommentFilter
    read_roles = ALL_ROLES
    write_roles = REVIEW_ROLES

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        # Comments on a queue item follow the blind rule; edits and deletes too.
        return queryset.select_related("author", "trace", "span").filter(
            visibility.comments_visible_to(self.actor.user)
        )

    @extend_schema(request=s.CommentCreateSerializer, responses={201: s.CommentSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = dict(validated(request, s.CommentCreateSerializer))
        data.update(target_row_ids(self.project, **_external_ids(data)))
        comment = services.comment_create(actor=self.actor, project=self.project, **data)
        return Response(self.get_serializer(comment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.CommentUpdateSerializer, responses=s.CommentSerializer)
    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.CommentUpdateSerializer)
        comment = services.comment_update(
            actor=self.actor, comment=self.get_object(), body=data["body"]
        )
        return Response(self.get_serializer(comment).data)

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        services.comment_delete(
            actor=self.actor, comment=self.get_object(), membership=self.membership
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- routing rules -------------------------------------------------------------------------------


class RoutingRuleViewSet(
    HistoryActionMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet
):
    """Rules that sample new traces matching a filter into a queue, with a daily cap."""

    scoped_model = RoutingRule
    serializer_class = s.RoutingRuleSerializer
    filterset_class = filters.RoutingRuleFilter
    read_roles = ALL_ROLES
    write_roles = MANAGE_ROLES

    @extend_schema(request=s.RoutingRuleCreateSerializer, responses={201: s.RoutingRuleSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.RoutingRuleCreateSerializer)
        rule = services.routing_rule_create(actor=self.actor, project=self.project, **data)
        return Response(s.RoutingRuleSerializer(rule).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.RoutingRuleUpdateSerializer, responses=s.RoutingRuleSerializer)
    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.RoutingRuleUpdateSerializer)
        rule = services.routing_rule_update(actor=self.actor, rule=self.get_object(), **data)
        return Response(s.RoutingRuleSerializer(rule).data)

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        services.routing_rule_delete(actor=self.actor, rule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=s.RoutingRulePreviewInputSerializer, responses=s.RoutingPreviewSerializer
    )
    @action(detail=False, methods=["post"])
    def preview(self, request: Request, **kwargs: Any) -> Response:
        """What a rule not yet saved would route now: the newest traces it matches, or,
        for a thread rule, the threads it matches (their id, turns, last activity and
        first message), with the count; an example sampling draw."""
        data = validated(request, s.RoutingRulePreviewInputSerializer)
        queue = None
        if data["queue_id"] is not None:
            queue = ReviewQueue.objects.filter(project=self.project, pk=data["queue_id"]).first()
            if queue is None:
                raise DomainError("No such queue in this project.", details={"queue_id": ["?"]})
        strategy = strategy_check(
            project=self.project,
            strategy=data["strategy"],
            params=data["strategy_params"],
            source_queue_id=data["source_queue_id"],
            queue_id=queue.pk if queue is not None else None,
        )
        source = strategy["source_queue"]
        spec = DraftSpec(
            strategy=strategy["strategy"],
            strategy_params=strategy["strategy_params"],
            source_queue_id=source.pk if source is not None else None,
        )
        return Response(
            rule_preview(
                project=self.project,
                target=data["target"],
                filter_params=data["filter_params"],
                thread_conditions=data["thread_conditions"],
                sampling_rate=data["sampling_rate"],
                spec=spec,
                queue=queue,
            )
        )

    @extend_schema(responses=s.RoutingPreviewSerializer)
    @action(detail=True, methods=["get"], url_path="preview")
    def preview_saved(self, request: Request, **kwargs: Any) -> Response:
        """What this rule would route now, by its own sampling draw (the one routing
        makes)."""
        rule = self.get_object()
        return Response(
            rule_preview(
                project=self.project,
                target=rule.target,
                filter_params=rule.filter_params,
                thread_conditions=rule.thread_conditions,
                sampling_rate=rule.sampling_rate,
                spec=rule,
                queue=rule.queue,
                rule=rule,
            )
        )


def rule_preview(
    *,
    project: Any,
    target: str,
    filter_params: dict[str, Any],
    thread_conditions: dict[str, Any],
    sampling_rate: float,
    spec: Any,
    queue: ReviewQueue | None,
    rule: RoutingRule | None = None,
) -> dict[str, Any]:
    """A rule's preview as the API answers it (``RoutingPreviewSerializer``); raises
    ``DomainError`` (400) for a rule that could not be saved as it is."""
    filter_params = trace_selectors.validate_trace_filter(filter_params)
    trace_selectors.trace_filter_check_score_names(project=project, params=filter_params)
    thread_rule_check(
        target=target,
        conditions=thread_conditions,
        filter_params=filter_params,
        strategy=spec.strategy,
    )
    if target == RoutingTarget.THREAD:
        preview = thread_rule_preview(
            project=project,
            conditions=thread_conditions,
            filter_params=filter_params,
            sampling_rate=sampling_rate,
            rule_id=rule.pk if rule is not None else None,
            queue=queue,
        )
        threads = [
            {
                "thread_id": row["external_id"],
                "turns": row["turns"],
                "last_activity": row["last_activity"],
                "first_message": input_snippet(row["first_input"]),
                "reason": row["reason"],
                "taken": row["taken"],
                "queued": row["queued"],
            }
            for row in preview["rows"]
        ]
        body = {"matched": preview["matched"], "exact": preview["exact"], "traces": [],
                "threads": threads}  # fmt: skip
    else:
        if not filter_params and spec.strategy == RoutingStrategy.MATCH_AND_SAMPLE:
            raise DomainError(
                "A routing rule needs a trace filter.", details={"filter_params": ["required"]}
            )
        preview = lead_selectors.routing_preview(
            project=project,
            filter_params=filter_params,
            sampling_rate=sampling_rate,
            rule=rule,
            strategy=spec,
        )
        traces = [
            {
                "trace_id": row["external_id"],
                "name": row["name"],
                "status": row["status"],
                "reason": row["reason"],
                "taken": row["taken"],
            }
            for row in preview["rows"]
        ]
        body = {"matched": preview["matched"], "exact": preview["exact"], "traces": traces,
                "threads": []}  # fmt: skip
    return s.RoutingPreviewSerializer({"target": target, **body}).data
