from django.urls import path

from review.comparison import pages as comparison_pages
from review.pages import history, review_actions, reviewer
from review.quality.pages import calibration as calibration_views
from review.quality.pages import report as report_views

org = "orgs/<slug:org_slug>/"
project = org + "projects/<slug:project_slug>/"
review = project + "review/<int:assignment_pk>/"

urlpatterns = [
    path(org + "work/", reviewer.MyWorkView.as_view(), name="review-my-work"),
    path(
        org + "calibration/",
        calibration_views.MyCalibrationView.as_view(),
        name="review-my-calibration",
    ),
    path(org + "history/", history.MyHistoryView.as_view(), name="review-history"),
    path(org + "adjudication/", history.AdjudicationListView.as_view(), name="review-adjudication"),
    path(
        project + "queues/<int:queue_pk>/start/",
        reviewer.QueueStartView.as_view(),
        name="review-queue-start",
    ),
    path(review, reviewer.ReviewItemView.as_view(), name="review-item"),
    # A comparison item's page (review.comparison): outputs side by side.
    path(
        project + "compare/<int:assignment_pk>/",
        comparison_pages.ComparisonReviewView.as_view(),
        name="review-compare",
    ),
    path(
        project + "compare/<int:assignment_pk>/submit/",
        comparison_pages.ComparisonSubmitView.as_view(),
        name="review-compare-submit",
    ),
    path(
        project + "reports/comparison/<int:queue_pk>/",
        comparison_pages.ComparisonReportView.as_view(),
        name="reports-comparison",
    ),
    path(
        project + "comments/<int:comment_pk>/",
        reviewer.CommentOpenView.as_view(),
        name="review-comment",
    ),
    path(review + "submit/", review_actions.ReviewSubmitView.as_view(), name="review-submit"),
    path(review + "skip/", review_actions.ReviewSkipView.as_view(), name="review-skip"),
    path(review + "release/", review_actions.ReviewReleaseView.as_view(), name="review-release"),
    path(review + "next/", review_actions.ReviewPrefetchView.as_view(), name="review-prefetch"),
    path(
        review + "span-comment/",
        review_actions.SpanCommentView.as_view(),
        name="review-span-comment",
    ),
    path(
        review + "turn-comment/",
        review_actions.TurnCommentView.as_view(),
        name="review-turn-comment",
    ),
    path(review + "span/", reviewer.SpanDetailView.as_view(), name="review-span"),
    path(review + "draft/", review_actions.ReviewDraftView.as_view(), name="review-draft"),
    path(review + "renew/", review_actions.ReviewRenewView.as_view(), name="review-renew"),
    path(review + "resolve/", review_actions.ReviewResolveView.as_view(), name="review-resolve"),
    path(
        project + "history/<int:annotation_pk>/",
        history.HistoryItemView.as_view(),
        name="review-history-item",
    ),
    path(
        project + "history/<int:annotation_pk>/span/",
        history.HistorySpanView.as_view(),
        name="review-history-span",
    ),
    path(
        project + "adjudicate/<int:item_pk>/",
        history.AdjudicateView.as_view(),
        name="review-adjudicate",
    ),
    path(
        project + "adjudicate/<int:item_pk>/span/",
        history.AdjudicateSpanView.as_view(),
        name="review-adjudicate-span",
    ),
    path(
        project + "reports/quality/",
        report_views.QualityReportView.as_view(),
        name="reports-quality",
    ),
    path(
        project + "reports/quality/settings/",
        calibration_views.QualitySettingsView.as_view(),
        name="reports-quality-settings",
    ),
    path(
        project + "reports/quality/agreement/<int:queue_pk>/<int:config_pk>/",
        report_views.AgreementHistoryView.as_view(),
        name="reports-quality-agreement-history",
    ),
    path(
        project + "calibration/",
        calibration_views.CalibrationSetListView.as_view(),
        name="calibration-sets",
    ),
    path(
        project + "calibration/<int:calibration_set_pk>/",
        calibration_views.CalibrationSetView.as_view(),
        name="calibration-set",
    ),
    path(
        project + "calibration/<int:calibration_set_pk>/gold/",
        calibration_views.GoldAnswerView.as_view(),
        name="calibration-gold",
    ),
    path(
        project + "calibration/<int:calibration_set_pk>/gold/<int:gold_answer_pk>/remove/",
        calibration_views.GoldAnswerRemoveView.as_view(),
        name="calibration-gold-remove",
    ),
    path(
        project + "calibration/<int:calibration_set_pk>/rounds/",
        calibration_views.CalibrationRoundStartView.as_view(),
        name="calibration-round-start",
    ),
    path(
        project + "calibration/rounds/<int:calibration_round_pk>/",
        calibration_views.CalibrationRoundView.as_view(),
        name="calibration-round",
    ),
    path(
        project + "calibration/rounds/<int:calibration_round_pk>/score/",
        calibration_views.CalibrationRoundScoreView.as_view(),
        name="calibration-round-score",
    ),
    path(
        project + "alignment/",
        calibration_views.AlignmentMappingListView.as_view(),
        name="alignment-mappings",
    ),
    path(
        project + "alignment/<int:alignment_mapping_pk>/refresh/",
        calibration_views.AlignmentRefreshView.as_view(),
        name="alignment-refresh",
    ),
    path(
        project + "alignment/<int:alignment_mapping_pk>/scope/",
        calibration_views.AlignmentScopeView.as_view(),
        name="alignment-scope",
    ),
]
