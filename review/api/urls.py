from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from review.api import views
from review.comparison.api import (
    ComparisonViewSet,
    LeaseComparisonViewSet,
    QueueComparisonViewSet,
)
from review.quality.api.agreement import QueueAgreementViewSet
from review.quality.api.views import (
    AlignmentMappingViewSet,
    CalibrationRoundViewSet,
    CalibrationSetViewSet,
    QualityAlertViewSet,
    QualitySettingsViewSet,
    QueueCalibrationViewSet,
)

project_router = SimpleRouter()
project_router.register("score-configs", views.ScoreConfigViewSet, basename="score-config")
project_router.register("queues", views.QueueViewSet, basename="review-queue")
project_router.register(
    r"queues/(?P<queue_pk>\d+)/items", views.QueueItemViewSet, basename="queue-item"
)
project_router.register("assignments", views.AssignmentViewSet, basename="assignment")
project_router.register("annotations", views.AnnotationViewSet, basename="annotation")
project_router.register("adjudications", views.AdjudicationViewSet, basename="adjudication")
project_router.register("comments", views.CommentViewSet, basename="comment")
project_router.register("routing-rules", views.RoutingRuleViewSet, basename="routing-rule")
project_router.register("calibration-sets", CalibrationSetViewSet, basename="calibration-set")
project_router.register("calibration-rounds", CalibrationRoundViewSet, basename="calibration-round")
project_router.register("queue-calibrations", QueueCalibrationViewSet, basename="queue-calibration")
project_router.register("alignment-mappings", AlignmentMappingViewSet, basename="alignment-mapping")
project_router.register("alerts", QualityAlertViewSet, basename="quality-alert")
project_router.register("comparisons", ComparisonViewSet, basename="comparison")

_QUEUE = r"^orgs/(?P<org_slug>[-\w]+)/projects/(?P<project_slug>[-\w]+)/queues/(?P<queue_pk>\d+)/"

_PROJECT = r"^orgs/(?P<org_slug>[-\w]+)/projects/(?P<project_slug>[-\w]+)/"

urlpatterns = [
    path("orgs/<slug:org_slug>/projects/<slug:project_slug>/", include(project_router.urls)),
    # A queue's comparison questions, items, report and export (review.comparison).
    re_path(
        _QUEUE + r"comparison/$",
        QueueComparisonViewSet.as_view({"get": "show", "put": "change"}),
        name="queue-comparison",
    ),
    re_path(
        _QUEUE + r"comparison/items/$",
        QueueComparisonViewSet.as_view({"post": "enqueue"}),
        name="queue-comparison-items",
    ),
    re_path(
        _QUEUE + r"comparison/report/$",
        QueueComparisonViewSet.as_view({"get": "report"}),
        name="queue-comparison-report",
    ),
    re_path(
        _QUEUE + r"comparison/export/$",
        QueueComparisonViewSet.as_view({"get": "export"}),
        name="queue-comparison-export",
    ),
    re_path(
        _PROJECT + r"assignments/(?P<assignment_pk>\d+)/comparison/$",
        LeaseComparisonViewSet.as_view({"get": "show", "post": "submit"}),
        name="lease-comparison",
    ),
    re_path(
        _QUEUE + r"agreement/$",
        QueueAgreementViewSet.as_view({"get": "summary"}),
        name="queue-agreement",
    ),
    re_path(
        _QUEUE + r"agreement/csv/$",
        QueueAgreementViewSet.as_view({"get": "csv"}),
        name="queue-agreement-csv",
    ),
    re_path(
        r"^orgs/(?P<org_slug>[-\w]+)/projects/(?P<project_slug>[-\w]+)/quality-settings/$",
        QualitySettingsViewSet.as_view({"get": "show", "put": "change"}),
        name="quality-settings",
    ),
]
