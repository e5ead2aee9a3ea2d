from django.urls import path

from datasets import views

project = "orgs/<slug:org_slug>/projects/<slug:project_slug>/"
dataset = project + "datasets/<int:dataset_pk>/"
experiment = project + "experiments/<int:experiment_pk>/"

urlpatterns = [
    path(project + "datasets/", views.DatasetListView.as_view(), name="datasets-list"),
    path(project + "datasets/promote/", views.PromoteView.as_view(), name="datasets-promote"),
    path(
        project + "datasets/promote/matching/",
        views.PromoteMatchingView.as_view(),
        name="datasets-promote-matching",
    ),
    path(dataset, views.DatasetDetailView.as_view(), name="datasets-detail"),
    path(
        dataset + "items/<int:dataset_item_pk>/",
        views.DatasetItemView.as_view(),
        name="datasets-item",
    ),
    path(
        dataset + "send-to-queue/",
        views.DatasetSendToQueueView.as_view(),
        name="datasets-send-to-queue",
    ),
    path(dataset + "versions/", views.DatasetVersionsView.as_view(), name="datasets-versions"),
    path(dataset + "import/", views.DatasetImportView.as_view(), name="datasets-import"),
    path(dataset + "exports/", views.DatasetExportsView.as_view(), name="datasets-exports"),
    path(
        dataset + "exports/<int:export_pk>/status/",
        views.DatasetExportStatusView.as_view(),
        name="datasets-export-status",
    ),
    path(
        dataset + "exports/<int:export_pk>/download/",
        views.DatasetExportDownloadView.as_view(),
        name="datasets-export-download",
    ),
    path(project + "experiments/", views.ExperimentListView.as_view(), name="experiments-list"),
    path(experiment, views.ExperimentView.as_view(), name="experiments-detail"),
    path(
        experiment + "compare/",
        views.ExperimentCompareView.as_view(),
        name="experiments-compare",
    ),
]
