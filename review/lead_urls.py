from django.urls import path

from review.pages import lead as views

project = "orgs/<slug:org_slug>/projects/<slug:project_slug>/"
queue = project + "queues/<int:queue_pk>/"

urlpatterns = [
    path(project + "rubrics/", views.RubricListView.as_view(), name="lead-rubrics"),
    path(project + "rubrics/new/", views.RubricCreateView.as_view(), name="lead-rubric-create"),
    path(project + "rubrics/<int:config_pk>/", views.RubricEditView.as_view(), name="lead-rubric"),
    path(project + "queues/", views.QueueListView.as_view(), name="lead-queues"),
    path(project + "queues/new/", views.QueueFormView.as_view(), name="lead-queue-create"),
    path(queue + "edit/", views.QueueFormView.as_view(), name="lead-queue-edit"),
    path(queue + "board/", views.QueueBoardView.as_view(), name="lead-queue-board"),
    path(queue + "board/live/", views.QueueBoardLiveView.as_view(), name="lead-queue-board-live"),
    path(queue + "items/update/", views.QueueItemsUpdateView.as_view(), name="lead-items-update"),
    path(queue + "items/<int:item_pk>/", views.ItemView.as_view(), name="lead-item"),
    path(queue + "rules/", views.RoutingRulesView.as_view(), name="lead-queue-rules"),
    path(queue + "rules/preview/", views.RoutingPreviewView.as_view(), name="lead-rule-preview"),
    path(
        queue + "rules/<int:rule_pk>/edit/",
        views.RoutingRuleEditView.as_view(),
        name="lead-rule-edit",
    ),
    path(
        queue + "rules/<int:rule_pk>/",
        views.RoutingRuleChangeView.as_view(),
        name="lead-rule-change",
    ),
    path(
        project + "annotations/<int:annotation_pk>/",
        views.AnnotationView.as_view(),
        name="lead-annotation",
    ),
    path(project + "traces/add-to-queue/", views.BulkAddView.as_view(), name="lead-bulk-add"),
]
