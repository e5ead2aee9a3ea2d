from django.urls import path

from review import report_views, views

org = "orgs/<slug:org_slug>/"
project = org + "projects/<slug:project_slug>/"
review = project + "review/<int:assignment_pk>/"

urlpatterns = [
    path(org + "work/", views.MyWorkView.as_view(), name="review-my-work"),
    path(org + "history/", views.MyHistoryView.as_view(), name="review-history"),
    path(org + "adjudication/", views.AdjudicationListView.as_view(), name="review-adjudication"),
    path(
        project + "queues/<int:queue_pk>/start/",
        views.QueueStartView.as_view(),
        name="review-queue-start",
    ),
    path(review, views.ReviewItemView.as_view(), name="review-item"),
    path(review + "submit/", views.ReviewSubmitView.as_view(), name="review-submit"),
    path(review + "skip/", views.ReviewSkipView.as_view(), name="review-skip"),
    path(review + "release/", views.ReviewReleaseView.as_view(), name="review-release"),
    path(review + "next/", views.ReviewPrefetchView.as_view(), name="review-prefetch"),
    path(review + "span-comment/", views.SpanCommentView.as_view(), name="review-span-comment"),
    path(
        project + "history/<int:annotation_pk>/",
        views.HistoryItemView.as_view(),
        name="review-history-item",
    ),
    path(
        project + "adjudicate/<int:item_pk>/",
        views.AdjudicateView.as_view(),
        name="review-adjudicate",
    ),
    path(
        project + "reports/quality/",
        report_views.QualityReportView.as_view(),
        name="reports-quality",
    ),
]
