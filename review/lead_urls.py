from django.urls import path

from review.comparison import pages as comparison_pages
from review.pages import board, lead, routing

project = "orgs/<slug:org_slug>/projects/<slug:project_slug>/"
queue = project + "queues/<int:queue_pk>/"

urlpatterns = [
    path(project + "rubrics/", lead.RubricListView.as_view(), name="lead-rubrics"),
    path(project + "rubrics/new/", lead.RubricCreateView.as_view(), name="lead-rubric-create"),
    path(project + "rubrics/<int:config_pk>/", lead.RubricEditView.as_view(), name="lead-rubric"),
    path(
        project + "rubrics/<int:config_pk>/history/",
        lead.RubricHistoryView.as_view(),
        name="lead-rubric-history",
    ),
    path(project + "queues/", lead.QueueListView.as_view(), name="lead-queues"),
    path(project + "queues/new/", lead.QueueFormView.as_view(), name="lead-queue-create"),
    path(queue + "edit/", lead.QueueFormView.as_view(), name="lead-queue-edit"),
    path(queue + "history/", lead.QueueHistoryView.as_view(), name="lead-queue-history"),
    path(queue + "board/", board.QueueBoardView.as_view(), name="lead-queue-board"),
    path(queue + "board/live/", board.QueueBoardLiveView.as_view(), name="lead-queue-board-live"),
    path(queue + "items/update/", board.QueueItemsUpdateView.as_view(), name="lead-items-update"),
    path(queue + "items/<int:item_pk>/", lead.ItemView.as_view(), name="lead-item"),
    path(
        queue + "comparison/",
        comparison_pages.ComparisonSetupView.as_view(),
        name="lead-queue-comparison",
    ),
    path(queue + "rules/", routing.RoutingRulesView.as_view(), name="lead-queue-rules"),
    path(queue + "rules/preview/", routing.RoutingPreviewView.as_view(), name="lead-rule-preview"),
    path(
        queue + "rules/<int:rule_pk>/edit/",
        routing.RoutingRuleEditView.as_view(),
        name="lead-rule-edit",
    ),
    path(
        queue + "rules/<int:rule_pk>/history/",
        routing.RoutingRuleHistoryView.as_view(),
        name="lead-rule-history",
    ),
    path(
        queue + "rules/<int:rule_pk>/",
        routing.RoutingRuleChangeView.as_view(),
        name="lead-rule-change",
    ),
    path(
        project + "annotations/<int:annotation_pk>/",
        lead.AnnotationView.as_view(),
        name="lead-annotation",
    ),
    path(project + "traces/add-to-queue/", lead.BulkAddView.as_view(), name="lead-bulk-add"),
]
