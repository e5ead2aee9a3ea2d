"""History of items written by the set-based path (imports, bulk promotion): who, when,
from what to what, in the history table django-simple-history keeps, fenced to the
organization in scope."""

from __future__ import annotations

import pytest

from datasets.models import DatasetItem, DatasetItemRevision
from hitl import audit, tenancy
from hitl.audit import Actor
from hitl.tenancy import TenantScopeError
from tests.datasets.helpers import import_rows, jsonl, make_dataset

ROWS = [
    {
        "id": "dose-1",
        "input": {"q": "max daily paracetamol?"},
        "expected_output": {"a": "4 g"},
        "metadata": {"lang": "en"},
        "tags": ["dosing", "adult"],
        "failure_modes": ["wrong_dose"],
        "failure_reason": "said 40 g",
    },
    {"id": "dose-2", "input": {"q": "max daily ibuprofen?"}, "expected_output": {"a": "1.2 g"}},
]


def _import(tenant, dataset, rows, actor):
    from datasets import services

    with tenancy.tenant_scope(tenant.organization.pk):
        return services.dataset_import(
            actor=actor, dataset=dataset, stream=jsonl(rows), file_format="jsonl"
        )


def test_imported_items_have_their_creation_history_with_the_actor(tenant):
    dataset = make_dataset(tenant)
    actor = Actor(user=tenant.owner, api_key_id=77, api_key_prefix="hk_test", source="api")
    report = _import(tenant, dataset, ROWS, actor)
    assert (report.created, report.version) == (2, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        item = DatasetItem.objects.get(dataset=dataset, key="dose-1")
        (created,) = DatasetItem.history.filter(id=item.pk)
        assert created.history_type == "+" and created.history_user == tenant.owner
        assert (created.history_api_key_id, created.history_api_key_prefix) == (77, "hk_test")
        assert created.history_source == "api" and created.history_date == item.created_at
        # The history row is the item as written, field by field.
        for name in ("key", "input", "expected_output", "metadata", "tags", "failure_modes",
                     "failure_reason", "source_type", "content_hash", "project_id",
                     "dataset_id", "organization_id", "created_by_id"):  # fmt: skip
            assert getattr(created, name) == getattr(item, name), name
        assert item.tags == ["dosing", "adult"] and item.created_by == tenant.owner
        assert item.input == {"q": "max daily paracetamol?"}
        assert item.expected_output == {"a": "4 g"}
        other = DatasetItem.objects.get(dataset=dataset, key="dose-2")
        assert other.expected_tool_calls is None and other.tags == [] and other.trace_id is None
        assert DatasetItem.history.filter(dataset=dataset).count() == 2


def test_a_reimport_records_each_change_from_what_to_what_and_nothing_for_the_rest(tenant):
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, ROWS)
    changed = [
        {**ROWS[0], "expected_output": {"a": "4 g a day"}, "tags": ["dosing"]},
        ROWS[1],  # unchanged
        {"id": "dose-3", "input": {"q": "max daily aspirin?"}},
    ]
    report = _import(tenant, dataset, changed, Actor(user=tenant.admin))
    assert (report.created, report.updated, report.unchanged, report.version) == (1, 1, 1, 2)
    with tenancy.tenant_scope(tenant.organization.pk):
        first = DatasetItem.objects.get(dataset=dataset, key="dose-1")
        assert first.expected_output == {"a": "4 g a day"} and first.tags == ["dosing"]
        edit, creation = DatasetItem.history.filter(id=first.pk)  # newest first
        assert (edit.history_type, creation.history_type) == ("~", "+")
        assert (edit.history_user, creation.history_user) == (tenant.admin, tenant.owner)
        assert edit.history_date == first.updated_at > creation.history_date
        delta = edit.diff_against(creation)
        assert sorted(c.field for c in delta.changes) == [
            "content_hash",
            "expected_output",
            "tags",
            "updated_at",
        ]
        by_field = {c.field: (c.old, c.new) for c in delta.changes}
        assert by_field["expected_output"] == ({"a": "4 g"}, {"a": "4 g a day"})
        assert by_field["tags"] == (["dosing", "adult"], ["dosing"])
        # As the admin and the item page say it.
        (shown, _created) = audit.history_for_display(first.history.all())
        assert shown["kind"] == "changed" and "admin" in shown["who"]
        assert any("4 g a day" in (line["new"] or "") for line in shown["lines"]), shown
        # The unchanged item kept its one row; the new one has its creation.
        second = DatasetItem.objects.get(dataset=dataset, key="dose-2")
        assert DatasetItem.history.filter(id=second.pk).count() == 1
        third = DatasetItem.objects.get(dataset=dataset, key="dose-3")
        assert [h.history_type for h in DatasetItem.history.filter(id=third.pk)] == ["+"]
        # Version 1 still reads the old content; version 2 the new.
        revisions = DatasetItemRevision.objects.filter(dataset=dataset, key="dose-1")
        old, new = revisions.order_by("added_in")
        assert (old.added_in, old.removed_in, new.added_in, new.removed_in) == (1, 2, 2, None)
        assert old.content["expected_output"] == {"a": "4 g"}
        assert new.content["expected_output"] == {"a": "4 g a day"}
        assert new.item_id == first.pk and new.content_hash == first.content_hash


def test_importing_the_same_rows_again_writes_no_history(tenant):
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, ROWS)
    again = import_rows(tenant, dataset, ROWS)
    assert (again.created, again.updated, again.unchanged, again.version) == (0, 0, 2, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert DatasetItem.history.filter(dataset=dataset).count() == 2


def test_an_atomic_import_refused_leaves_no_history(tenant):
    from hitl.exceptions import DomainError

    dataset = make_dataset(tenant)
    rows = [*ROWS, {"id": "bad", "input": None}]
    with pytest.raises(DomainError):
        import_rows(tenant, dataset, rows, atomic=True)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not DatasetItem.history.filter(dataset=dataset).exists()


def test_a_tag_longer_than_the_column_is_a_row_error(tenant):
    dataset = make_dataset(tenant)
    report = import_rows(tenant, dataset, [*ROWS, {"id": "x", "input": 1, "tags": ["t" * 65]}])
    assert report.created == 2
    assert report.errors == [
        {"line": 3, "id": "x", "reason": "tags: an entry is longer than 64 characters"}
    ]


def test_history_copies_only_rows_of_the_organization_in_scope(tenant, other_tenant):
    theirs = make_dataset(other_tenant)
    import_rows(other_tenant, theirs, ROWS)
    with tenancy.tenant_scope(other_tenant.organization.pk):
        their_ids = list(DatasetItem.objects.values_list("pk", flat=True))
        before = DatasetItem.history.count()
    with tenancy.tenant_scope(tenant.organization.pk):
        assert audit.bulk_record_from_table(DatasetItem, their_ids, "~") == 0
    with pytest.raises(TenantScopeError):
        audit.bulk_record_from_table(DatasetItem, their_ids, "~")
    with tenancy.tenant_scope(other_tenant.organization.pk):
        assert DatasetItem.history.count() == before


def test_lists_with_any_characters_land_as_written(tenant):
    dataset = make_dataset(tenant)
    tags = ['say "hi"', "back\\slash", "a,b", "{braces}", "NULL", " padded ", "", "dosé ✓"]
    import_rows(tenant, dataset, [{"id": "odd", "input": 1, "tags": tags, "failure_modes": []}])
    with tenancy.tenant_scope(tenant.organization.pk):
        item = DatasetItem.objects.get(dataset=dataset, key="odd")
        assert item.tags == tags and item.failure_modes == []
        (created,) = DatasetItem.history.filter(id=item.pk)
        assert created.tags == tags
