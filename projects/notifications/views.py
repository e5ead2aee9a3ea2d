"""Settings pages for notifications (organization owners and admins): destinations
(list, create with the secret shown once, edit events and filters, rotate the secret,
disable and enable, send a test event, delete), each destination's delivery log with
every attempt and "redeliver", and queue backlog thresholds; and, for every member,
their own preferences for mention and assignment messages.

Writes go through the same services as the API (projects/notifications/); the pages
only read forms and show what the services answer. Queues are picked by name among the
organization's (``projects.selectors.queue_choices``); deleting a destination and
removing a backlog alert ask first (``projects.confirmations``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from hitl.exceptions import DomainError
from hitl.forms import PageNumberForm, form_add_domain_error
from projects import confirmations, selectors
from projects.confirmations import Confirmation
from projects.forms import (
    DestinationActionForm,
    DestinationForm,
    NotificationPreferenceForm,
    QueueAlertForm,
)
from projects.models import (
    Delivery,
    Destination,
    DestinationKind,
    PersonalChannel,
    Project,
    QueueAlert,
)
from projects.notifications import delivery as delivery_services
from projects.notifications import destinations as destination_services
from projects.notifications import personal as personal_services
from projects.notifications import queue_alerts as queue_alert_services
from projects.notifications.api import shown_url
from projects.notifications.catalogue import EVENT_TYPES
from projects.pages import OrganizationPageView
from projects.views import SettingsPageView

DELIVERIES_PER_PAGE = 25


class NotificationSettingsView(SettingsPageView):
    def destinations_url(self) -> str:
        return reverse("settings-destinations", kwargs={"org_slug": self.organization.slug})

    def destination_url(self, destination: Destination) -> str:
        return reverse(
            "settings-destination",
            kwargs={"org_slug": self.organization.slug, "destination_pk": destination.pk},
        )

    def base_context(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "membership": self.membership,
            "projects": list(Project.objects.order_by("name")),
            "event_types": sorted(EVENT_TYPES.items()),
            "kinds": DestinationKind.choices,
            "score_names": selectors.score_name_choices(viewer=self.request.user),
        }

    def secret_shown(self, response: HttpResponse) -> HttpResponse:
        response["Cache-Control"] = "no-store"
        return response


class DestinationsView(NotificationSettingsView):
    """GET: every destination with its state and the form for a new one, and the queue
    backlog thresholds. POST: create a destination; a webhook's secret is shown this
    once, with a copy button."""

    def page(
        self,
        *,
        new_secret: str = "",
        new_destination: Destination | None = None,
        form: DestinationForm | None = None,
        alert_form: QueueAlertForm | None = None,
        status: int = 200,
    ) -> HttpResponse:
        destinations = Destination.objects.select_related("project").order_by("name", "id")
        labels = selectors.queue_labels()
        alerts = list(QueueAlert.objects.select_related("project").order_by("queue_id"))
        for alert in alerts:
            alert.queue_label = labels.get(alert.queue_id, f"queue #{alert.queue_id} (gone)")
            alert.removal = confirmations.queue_alert_removal(
                alert.queue_label, alert.backlog_threshold
            )
        context = {
            **self.base_context(),
            "destinations": [
                (d, shown_url(d), labels.get(d.filter_queue_id) if d.filter_queue_id else "")
                for d in destinations
            ],
            "alerts": alerts,
            "new_secret": new_secret,
            "new_destination": new_destination,
            "form": form or DestinationForm(creating=True),
            "alert_form": alert_form or QueueAlertForm(),
        }
        return render(
            self.request, "projects/notifications/destinations.html", context, status=status
        )

    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        return self.page()

    def post(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        form = DestinationForm(request.POST, creating=True)
        if not form.is_valid():
            return self.page(form=form, status=422)
        try:
            destination, secret = destination_services.destination_create(
                actor=self.actor,
                kind=form.cleaned_data["kind"],
                url=form.cleaned_data["url"],
                **form.service_fields(),
            )
        except DomainError as exc:
            self.fail(exc)
            form_add_domain_error(form, exc, fields={"project_id": "project"})
            return self.page(form=form, status=422)
        messages.success(request, f"Destination {destination.name!r} created.")
        if not secret:
            return redirect(self.destination_url(destination))
        return self.secret_shown(self.page(new_secret=secret, new_destination=destination))


class DestinationView(NotificationSettingsView):
    """GET: one destination's settings and its delivery log (every attempt: status,
    latency, response excerpt, error), a page at a time; an htmx request gets the log
    alone. POST ``action``: save, rotate, enable, disable, test, delete."""

    destination: Destination

    def enter(self, **kwargs: Any) -> None:
        super().enter(**kwargs)
        destination = (
            Destination.objects.select_related("project")
            .filter(pk=kwargs.get("destination_pk"))
            .first()
        )
        if destination is None:
            raise Http404
        self.destination = destination

    def page(
        self,
        *,
        new_secret: str = "",
        form: DestinationForm | None = None,
        status: int = 200,
    ) -> HttpResponse:
        deliveries = (
            Delivery.objects.filter(destination=self.destination)
            .select_related("event")
            .prefetch_related("attempts_log")
            .order_by("-created_at", "-id")
        )
        log = Paginator(deliveries, DELIVERIES_PER_PAGE).get_page(
            PageNumberForm(self.request.GET).number()
        )
        queues = DestinationForm(keep_queue_id=self.destination.filter_queue_id)
        chosen_queue = (
            self.destination.filter_queue_id if form is None else form["filter_queue_id"].value()
        )
        context = {
            **self.base_context(),
            "destination": self.destination,
            "deletion": confirmations.destination_deletion(self.destination),
            "shown_url": shown_url(self.destination),
            "selected_types": (
                self.destination.event_types if form is None else form["event_types"].value()
            ),
            "form": form,
            "queue_options": queues.fields["filter_queue_id"].choices,
            "chosen_queue": "" if chosen_queue is None else str(chosen_queue),
            "log": log,
            "new_secret": new_secret,
            "has_previous_secret": len(self.destination.signing_secrets()) > 1,
        }
        template = (
            "projects/notifications/_delivery_log.html"
            if self.request.headers.get("HX-Request") and self.request.method == "GET"
            else "projects/notifications/destination.html"
        )
        return render(self.request, template, context, status=status)

    def get(self, request: HttpRequest, org_slug: str, destination_pk: int) -> HttpResponse:
        return self.page()

    def post(self, request: HttpRequest, org_slug: str, destination_pk: int) -> HttpResponse:
        chosen = DestinationActionForm(request.POST)
        if not chosen.is_valid():
            for problem in chosen.errors["action"]:
                messages.error(request, f"Action: {problem}")
            return self.page(status=400)
        action = chosen.chosen()
        destination = self.destination
        form = None
        try:
            if action == "save":
                form = DestinationForm(request.POST, keep_queue_id=destination.filter_queue_id)
                if not form.is_valid():
                    return self.page(form=form, status=422)
                fields = form.service_fields()
                if form.cleaned_data["url"]:
                    fields["url"] = form.cleaned_data["url"]
                self.destination = destination_services.destination_update(
                    actor=self.actor, destination=destination, **fields
                )
                messages.success(request, "Saved.")
            elif action == "rotate":
                self.destination, secret = destination_services.destination_rotate_secret(
                    actor=self.actor, destination=destination
                )
                messages.success(
                    request, "New secret made; the old one keeps signing during the overlap."
                )
                return self.secret_shown(self.page(new_secret=secret))
            elif action in ("enable", "disable"):
                destination_services.destination_update(
                    actor=self.actor, destination=destination, enabled=action == "enable"
                )
                messages.success(request, f"{destination.name} {action}d.")
            elif action == "test":
                destination_services.destination_send_test(
                    actor=self.actor, destination=destination
                )
                messages.success(request, "Test event sent; its delivery appears in the log.")
            elif action == "delete" and not chosen.cleaned_data["confirm"]:
                return self.ask_first(
                    Confirmation(
                        title=f"Delete {destination.name}?",
                        lost=confirmations.destination_deletion(destination),
                        button=f"Delete {destination.name}",
                        cancel_url=self.destination_url(destination),
                    )
                )
            elif action == "delete":
                destination_services.destination_delete(actor=self.actor, destination=destination)
                messages.success(request, f"{destination.name} deleted.")
                return redirect(self.destinations_url())
        except DomainError as exc:
            self.fail(exc)
            if form is not None:
                form_add_domain_error(form, exc, fields={"project_id": "project"})
            return self.page(form=form, status=422)
        return redirect(self.destination_url(destination))


class DeliveryRedeliverView(NotificationSettingsView):
    """POST: send a delivery's event to its destination again, now."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, org_slug: str, delivery_pk: int) -> HttpResponse:
        delivery = Delivery.objects.select_related("destination").filter(pk=delivery_pk).first()
        if delivery is None:
            raise Http404
        try:
            delivery_services.delivery_redeliver(actor=self.actor, delivery=delivery)
            messages.success(request, "Sent again: a new attempt is on its way.")
        except DomainError as exc:
            self.fail(exc)
        return redirect(self.destination_url(delivery.destination))


class QueueAlertsView(DestinationsView):
    """POST: set a queue's backlog threshold, or remove it (``remove``); input that is
    no project or number answers the destinations page with the reasons (422)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        form = QueueAlertForm(request.POST)
        if not form.is_valid():
            return self.page(alert_form=form, status=422)
        remove = form.cleaned_data["remove"]
        if remove is not None:
            alert = QueueAlert.objects.filter(pk=remove).first()
            if alert is None:
                raise Http404
            label = selectors.queue_labels().get(alert.queue_id, f"queue #{alert.queue_id}")
            if not form.cleaned_data["confirm"]:
                return self.ask_first(
                    Confirmation(
                        title=f"Remove the backlog alert of {label}?",
                        lost=confirmations.queue_alert_removal(label, alert.backlog_threshold),
                        button="Remove the alert",
                        cancel_url=self.destinations_url(),
                    )
                )
            queue_alert_services.queue_alert_delete(actor=self.actor, alert=alert)
            messages.success(request, f"Backlog alert of {label} removed.")
            return redirect(self.destinations_url())
        project = form.cleaned_data["project"]
        queue_id = form.cleaned_data["queue_id"]
        threshold = form.cleaned_data["backlog_threshold"]
        label = form.queues[queue_id].label
        try:
            queue_alert_services.queue_alert_set(
                actor=self.actor, project=project, queue_id=queue_id, backlog_threshold=threshold
            )
            messages.success(request, f"{label}: alert at {threshold} waiting items.")
        except DomainError as exc:
            self.fail(exc)
        return redirect(self.destinations_url())


class NotificationPreferencesView(OrganizationPageView):
    """Every member's own page: how they hear that a comment mentions them or items
    were assigned to them (email, Slack direct message, off), and their Slack member
    id. Says when a direct message cannot be sent (no Slack bot, no member id) and that
    email goes instead."""

    def page(
        self, *, form: NotificationPreferenceForm | None = None, status: int = 200
    ) -> HttpResponse:
        preference = personal_services.preference_for(self.request.user.pk)
        current = form.data if form is not None else {}
        choices = [
            (name, label, current.get(name) or getattr(preference, name))
            for name, label in (
                ("mentions", "A comment mentions me"),
                ("assignments", "Items are assigned to me"),
            )
        ]
        context = {
            "organization": self.organization,
            "membership": self.membership,
            "preference": preference,
            "member_id": current.get("slack_member_id", preference.slack_member_id),
            "channels": PersonalChannel.choices,
            "choices": choices,
            "wants_slack": any(value == PersonalChannel.SLACK_DM for _n, _l, value in choices),
            "slack_dm_available": personal_services.slack_bot_destination() is not None,
            "form": form,
        }
        return render(
            self.request, "projects/notifications/preferences.html", context, status=status
        )

    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        return self.page()

    def post(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        form = NotificationPreferenceForm(request.POST)
        if not form.is_valid():
            return self.page(form=form, status=422)
        try:
            personal_services.preference_set(actor=self.actor, **form.cleaned_data)
        except DomainError as exc:
            form_add_domain_error(form, exc)
            return self.page(form=form, status=422)
        messages.success(request, "Preferences saved.")
        return redirect(
            reverse("notification-preferences-page", kwargs={"org_slug": self.organization.slug})
        )
