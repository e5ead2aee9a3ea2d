"""What the organization pages read from a request: organization switch, members and
invitations, API keys, notification destinations, queue backlog alerts and each
member's notification preferences. Every field is checked here (``hitl.forms``: storable
text, numbers within bounds, choices among the known ones); the services check the
rules (who may grant what, the SSRF guard, the Slack member id) and the views put their
refusals beside the fields.

Querysets of tenant rows are set in ``__init__``, inside the page's tenant scope.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from hitl.forms import TextField, WholeNumberField, storable_text
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


class TenantForm(forms.Form):
    """A form whose project choices (its model choice fields) are read in the tenant
    scope of the page."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, forms.ModelChoiceField):
                field.queryset = Project.objects.order_by("name")


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


class InvitationForm(TenantForm):
    email = forms.EmailField(
        max_length=254,
        validators=[storable_text],
        error_messages={"required": "Give the email address to invite."},
    )
    role = forms.ChoiceField(choices=Role.choices, error_messages={"required": "Choose a role."})
    projects = ProjectsField()


class MemberForm(TenantForm):
    """A member's role and project narrowing, or ``remove``."""

    remove = forms.BooleanField(required=False)
    role = forms.ChoiceField(choices=Role.choices, required=False)
    projects = ProjectsField()


class InvitationActionForm(forms.Form):
    action = forms.ChoiceField(choices=[("resend", "Resend"), ("revoke", "Revoke")], required=False)

    def chosen(self) -> str:
        return self.cleaned_data["action"] or "resend"


class ApiKeyForm(TenantForm):
    name = TextField(error_messages={"required": "Give the key a name."})
    project = forms.ModelChoiceField(
        queryset=None, error_messages={"required": "Choose its project."}
    )
    scopes = forms.MultipleChoiceField(choices=ApiKeyScope.choices, required=False)


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
    filter_queue_id = WholeNumberField(required=False, min_value=0, label="Queue id")
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

    def chosen(self) -> str:
        return self.cleaned_data["action"] or "save"


class QueueAlertForm(TenantForm):
    """Set a queue's backlog threshold, or ``remove`` an alert (by its id)."""

    remove = WholeNumberField(required=False)
    project = forms.ModelChoiceField(queryset=None, required=False)
    queue_id = WholeNumberField(required=False, min_value=0, label="Queue id")
    backlog_threshold = WholeNumberField(
        required=False, min_value=1, max_value=INT32_MAX, label="Waiting items"
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("remove") is None and "remove" not in self.errors:
            for name in ("project", "queue_id", "backlog_threshold"):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, "This field is required.")
        return data


class NotificationPreferenceForm(forms.Form):
    mentions = forms.ChoiceField(choices=PersonalChannel.choices, label="A comment mentions me")
    assignments = forms.ChoiceField(
        choices=PersonalChannel.choices, label="Items are assigned to me"
    )
    slack_member_id = TextField(max_length=32, required=False, label="Slack member id")
