from django.urls import path

from review import views

project = "orgs/<slug:org_slug>/projects/<slug:project_slug>/"

urlpatterns = [
    path("orgs/<slug:org_slug>/work/", views.MyWorkView.as_view(), name="review-my-work"),
    path(
        project + "queues/<int:queue_pk>/start/",
        views.QueueStartView.as_view(),
        name="review-queue-start",
    ),
    path(
        project + "review/<int:assignment_pk>/",
        views.ReviewItemView.as_view(),
        name="review-item",
    ),
    path(
        project + "review/<int:assignment_pk>/submit/",
        views.ReviewSubmitView.as_view(),
        name="review-submit",
    ),
    path(
        project + "review/<int:assignment_pk>/skip/",
        views.ReviewSkipView.as_view(),
        name="review-skip",
    ),
    path(
        project + "review/<int:assignment_pk>/release/",
        views.ReviewReleaseView.as_view(),
        name="review-release",
    ),
]
