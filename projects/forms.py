"""What the organization pages read from a request: organization switch, members and
invitations, API keys, notification destinations, queue backlog alerts and each
member's notification preferences. Every field is checked here (``hitl.forms``: storable
text, numbers within bounds, choices among the known ones); the services check the
rules (who may grant what, the SSRF guard, the Slack member id) and the views put their
refusals beside the fields.

Querysets of tenant rows are set in ``__init__``, inside the page's tenant scope: the
projects, and the review queues offered by name (``projects.selectors.queue_choices``,
read through the hook review registers); an id that is no queue of the organization in
scope is refused like an unknown choice.

A destructive action (remove a member, revoke a key or an invitation, delete a
destination, remove a backlog alert) carries ``confirm``; without it the page asks
first and acts on nothing.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from hitl.forms import TextField, WholeNumberField, storable_text
from projects import selectors
from projects.models import ApiKeyScope, DestinationKind, PersonalChannel, Project, Role
from projects.notifications.catalogue import EVENT_TYPES

# PositiveIntegerField's upper bound in PostgreSQL.
INT32_MAX = 2**31 - 1


class ProjectsField(forms.ModelMultipleChoiceField):
    """Projects of the organization in scope, ticked by id (none: no narrowing)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=None, required=False, **kwargs)

    def label_from_instance(self, obj: Project) -> str:
        return obj.name


class QueueField(forms.TypedChoiceField):
    """A review queue of the organization in scope, picked by name and project; cleans
    to its id (None when not required and left empty)."""

    def __init__(self, *, empty_label: str = "", **kwargs: Any) -> None:
        kwargs.setdefault(
            "error_messages",
            {"invalid_choice": "Choose one of this organization's queues."},
        )
        super().__init__(coerce=int, empty_value=None, choices=(), **kwargs)
        self.empty_label = empty_label

    def offer(self, queues: list[Any], *, keep: int | None = None) -> None:
        """Offers ``queues``; ``keep`` (a current value) stays offered even if its queue
        is gone, so saving the rest of the form does not silently drop it."""
        choices: list[tuple[Any, str]] = [("", self.empty_label)] if self.empty_label else []
        choices += [(q.id, q.label) for q in queues]
        if keep is not None and all(q.id != keep for q in queues):
            choices.append((keep, f"Queue #{keep} (no longer exists)"))
        self.choices = choices


class TenantForm(forms.Form):
    """A form whose project and queue choices are read in the tenant scope of the
    page."""

    def __init__(self, *args: Any, keep_queue_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queues: dict[int, Any] = {}
        for field in self.fields.values():
            if isinstance(field, forms.ModelChoiceField):
                field.queryset = Project.objects.order_by("name")
            elif isinstance(field, QueueField):
                if not self.queues:
                    self.queues = {q.id: q for q in selectors.queue_choices()}
                field.offer(list(self.queues.values()), keep=keep_queue_id)


def confirm_field() -> forms.BooleanField:
    """Ticked by the confirmation (the button's dialog, or the page that asks first)."""
    return forms.BooleanField(required=False)


class OrganizationSwitchForm(forms.Form):
    organization = TextField(max_length=100)

    def __init__(self, *args: Any, organizations: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organizations = organizations

    def clean_organization(self) -> str:
        slug = self.cleaned_data["organization"]
        if not self.organizations.filter(slug=slug).exists():
            raise ValidationError("You are not a member of that organization.")
        return slug


# How many people one invitation form sends to at most.
INVITE_AT_ONCE = 50


class EmailListField(forms.CharField):
    """One email address or several, separated by commas, semicolons, spaces or new
    lines (a column pasted from a spreadsheet); cleans to the distinct addresses in the
    order typed. Each is checked as an email address, with the address in the reason."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=INVITE_AT_ONCE * 256, validators=[storable_text], **kwargs)

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value)
        addresses: list[str] = []
        for part in re.split(r"[\s,;]+", text or ""):
            address = part.strip().strip("<>")
            if address and address.lower() not in {a.lower() for a in addresses}:
                addresses.append(address)
        if not addresses and self.required:
            raise ValidationError(self.error_messages["required"], code="required")
        if len(addresses) > INVITE_AT_ONCE:
            raise ValidationError(f"At most {INVITE_AT_ONCE} addresses at once.")
        bad = []
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                bad.append(address)
            else:
                if len(address) > 254:
                    bad.append(address)
        if bad:
            raise ValidationError(
                "Not an email address: " + ", ".join(a[:80] for a in bad), code="invalid"
            )
        return addresses


class QueuesField(forms.TypedMultipleChoiceField):
    """Review queues of the organization in scope, ticked by id (offered by
    ``TenantForm``); cleans to their ids."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "error_messages",
            {"invalid_choice": "Choose among this organization's queues."},
        )
        super().__init__(coerce=int, choices=(), required=False, **kwargs)


class InvitationForm(TenantForm):
    """One person or several (``email`` holds a list), with the role, the projects they
    are narrowed to and the queues whose reviewer pools they join."""

    email = EmailListField(error_messages={"required": "Give the email address to invite."})
    role = forms.ChoiceField(choices=Role.choices, error_messages={"required": "Choose a role."})
    projects = ProjectsField()
    queues = QueuesField(label="Queues to review")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queues = {q.id: q for q in selectors.queue_choices() if not q.archived}
        self.fields["queues"].choices = [(q.id, q.label) for q in self.queues.values()]


class MemberForm(TenantForm):
    """A member's role and project narrowing, or ``remove``."""

    remove = forms.BooleanField(required=False)
    role = forms.ChoiceField(choices=Role.choices, required=False)
    projects = ProjectsField()
    confirm = confirm_field()


class InvitationActionForm(forms.Form):
    action = forms.ChoiceField(choices=[("resend", "Resend"), ("revoke", "Revoke")], required=False)
    confirm = confirm_field()

    def chosen(self) -> str:
        return self.cleaned_data["action"] or "resend"


class ApiKeyForm(TenantForm):
    name = TextField(error_messages={"required": "Give the key a name."})
    project = forms.ModelChoiceField(
        queryset=None, error_messages={"required": "Choose its project."}
    )
    scopes = forms.MultipleChoiceField(choices=ApiKeyScope.choices, required=False)


class ConfirmForm(forms.Form):
    """A destructive action with nothing else to say (revoke an API key)."""

    confirm = confirm_field()


class DestinationForm(TenantForm):
    """A destination's settings as the create and edit forms post them. On edit, an
    empty URL keeps the current one; a bot token is changed only when one is typed, or
    removed when asked."""

    name = TextField(error_messages={"required": "Give the destination a name."})
    kind = forms.ChoiceField(choices=DestinationKind.choices, required=False)
    url = TextField(max_length=2000, required=False)
    event_types = forms.MultipleChoiceField(
        choices=sorted((name, name) for name in EVENT_TYPES), required=False
    )
    project = forms.ModelChoiceField(queryset=None, required=False)
    filter_queue_id = QueueField(required=False, empty_label="Any queue", label="Queue")
    filter_score_name = TextField(required=False, label="Score name")
    slack_bot_token = TextField(required=False, label="Slack bot token")
    remove_bot_token = forms.BooleanField(required=False)

    def __init__(self, *args: Any, creating: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].required = creating

    def service_fields(self) -> dict[str, Any]:
        """The fields as ``destination_create``/``destination_update`` take them (URL and
        kind apart)."""
        data = self.cleaned_data
        project = data.get("project")
        fields: dict[str, Any] = {
            "name": data["name"],
            "event_types": list(data.get("event_types") or []),
            "project_id": project.pk if project is not None else None,
            "filter_queue_id": data.get("filter_queue_id"),
            "filter_score_name": data.get("filter_score_name") or "",
        }
        if data.get("slack_bot_token"):
            fields["slack_bot_token"] = data["slack_bot_token"]
        elif data.get("remove_bot_token"):
            fields["slack_bot_token"] = ""
        return fields


class DestinationActionForm(forms.Form):
    """Which button of a destination's page was pressed (none: the edit form's save)."""

    action = forms.ChoiceField(
        choices=[(a, a) for a in ("save", "rotate", "enable", "disable", "test", "delete")],
        required=False,
    )
    confirm = confirm_field()

    def chosen(self) -> str:
        return self.cleaned_data["action"] or "save"


class QueueAlertForm(TenantForm):
    """Set a queue's backlog threshold, or ``remove`` an alert (by its id). The queue
    is picked among the organization's; its project comes with it (``project`` in the
    cleaned data)."""

    remove = WholeNumberField(required=False)
    queue_id = QueueField(required=False, empty_label="Choose a queue", label="Queue")
    backlog_threshold = WholeNumberField(
        required=False, min_value=1, max_value=INT32_MAX, label="Waiting items"
    )
    confirm = confirm_field()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("remove") is None and "remove" not in self.errors:
            for name in ("queue_id", "backlog_threshold"):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, "This field is required.")
            queue = self.queues.get(data.get("queue_id"))
            if queue is not None:
                data["project"] = Project.objects.filter(pk=queue.project_id).first()
                if data["project"] is None:
                    self.add_error("queue_id", "Choose one of this organization's queues.")
        return data


class NotificationPreferenceForm(forms.Form):
    mentions = forms.ChoiceField(choices=PersonalChannel.choices, label="A comment mentions me")
    assignments = forms.ChoiceField(
        choices=PersonalChannel.choices, label="Items are assigned to me"
    )
    slack_member_id = TextField(max_length=32, required=False, label="Slack member id")
