from django.urls import include, path
from rest_framework.routers import SimpleRouter

from datasets.api import views

project_router = SimpleRouter()
project_router.register("datasets", views.DatasetViewSet, basename="dataset")
project_router.register(
    r"datasets/(?P<dataset_pk>\d+)/items", views.DatasetItemViewSet, basename="dataset-item"
)
project_router.register(
    r"datasets/(?P<dataset_pk>\d+)/import", views.DatasetImportViewSet, basename="dataset-import"
)
project_router.register(
    r"datasets/(?P<dataset_pk>\d+)/versions",
    views.DatasetVersionViewSet,
    basename="dataset-version",
)
project_router.register(
    r"datasets/(?P<dataset_pk>\d+)/exports", views.DatasetExportViewSet, basename="dataset-export"
)
project_router.register("experiments", views.ExperimentViewSet, basename="experiment")
project_router.register(
    r"experiments/(?P<experiment_pk>\d+)/results",
    views.ExperimentResultViewSet,
    basename="experiment-result",
)

urlpatterns = [
    path("orgs/<slug:org_slug>/projects/<slug:project_slug>/", include(project_router.urls)),
]
