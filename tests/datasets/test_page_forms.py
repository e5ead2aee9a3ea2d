"""Every form of the datasets pages walked with what people (and scripts) send wrong:
NUL, bytes that are no UTF-8, numbers past 64 bits, words for numbers, unknown choices,
another organization's dataset, queue, item, trace or experiment, text too long, fields
left out. Each answers a 4xx with the field's reason beside its input (or above the
form for one sent in a link or a hidden input), and writes nothing; none answers a 5xx.

The forms are also checked without the middleware (which refuses NUL first), and the
page module is checked for hand reads of ``request.POST``/``request.GET``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from datasets import forms as dataset_forms
from datasets import services
from datasets.models import Dataset, DatasetExport, DatasetItem
from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from review.models import QueueItem
from tests.datasets.helpers import expected_config, import_rows, make_dataset
from tests.factories import Tenant
from tests.page_clients import project_url
from tests.page_input import BAD_UTF8, HAND_READ, HUGE, NUL, UNSTORABLE, send
from tests.review.helpers import make_queue, make_trace

ROOT = Path(__file__).resolve().parents[2]
NOT_A_NUMBER = ["abc", HUGE, "-1", "1.5"]
Rows = dict[str, Any]


@dataclass
class Walk:
    """One form: where it goes, a valid base, the wrong values of each field, where the
    page keeps its form, and what must stay unwritten."""

    url: Callable[[Tenant, Rows], str]
    valid: Callable[[Rows, Rows], dict[str, Any]]
    wrong: Callable[[Rows, Rows], dict[str, list[Any]]]
    state: Callable[[Tenant], Any]
    method: str = "post"
    form: str = "form"
    missing: tuple[str, ...] = ()
    expected: tuple[int, ...] = (422,)


def dataset_url(name: str, **kwargs: str) -> Callable[[Tenant, Rows], str]:
    return lambda t, rows: project_url(
        t, name, dataset_pk=rows["dataset"], **{k: rows[v] for k, v in kwargs.items()}
    )


def count(model: Any) -> Callable[[Tenant], int]:
    def read(t: Tenant) -> int:
        with tenant_scope(t.organization.pk):
            return model.objects.count()

    return read


def nothing(t: Tenant) -> None:
    return None


WALKS: dict[str, Walk] = {
    "new dataset": Walk(
        url=lambda t, rows: project_url(t, "datasets-list"),
        valid=lambda mine, theirs: {"name": "fresh", "description": "new cases"},
        wrong=lambda mine, theirs: {"name": ["x" * 201, "   ", "golden set"]},
        missing=("name",),
        state=count(Dataset),
    ),
    "items page": Walk(
        url=dataset_url("datasets-detail"),
        method="get",
        valid=lambda mine, theirs: {"version": "1", "after": "a"},
        wrong=lambda mine, theirs: {
            "version": [*NOT_A_NUMBER, "0", "9"],
            "after": ["x" * 301],
        },
        state=nothing,
        expected=(400,),
    ),
    "send to queue": Walk(
        url=dataset_url("datasets-send-to-queue"),
        valid=lambda mine, theirs: {"queue_id": str(mine["queue"]), "item_id": [mine["item"]]},
        wrong=lambda mine, theirs: {
            "queue_id": [*NOT_A_NUMBER, str(theirs["queue"])],
            "item_id": [*NOT_A_NUMBER, str(theirs["item"])],
            "next": ["/" + "x" * 2000],
        },
        missing=("queue_id", "item_id"),
        form="send_form",
        state=count(QueueItem),
        expected=(400, 422),
    ),
    "versions diff": Walk(
        url=dataset_url("datasets-versions"),
        method="get",
        valid=lambda mine, theirs: {"from": "1", "to": "2"},
        wrong=lambda mine, theirs: {"from": [*NOT_A_NUMBER, "0"], "to": [*NOT_A_NUMBER, "0"]},
        missing=("from", "to"),
        state=nothing,
    ),
    "promote": Walk(
        url=lambda t, rows: project_url(t, "datasets-promote"),
        valid=lambda mine, theirs: {
            "trace": mine["trace"],
            "dataset": str(mine["dataset"]),
            "failure_reason": "wrong dose",
            "expected_output": "2 g",
            "accept_output": "on",
            "update_existing": "on",
        },
        wrong=lambda mine, theirs: {
            "trace": ["x" * 257, "no-such-trace", theirs["trace"]],
            "span": ["x" * 257, "no-such-span"],
            "item": [*NOT_A_NUMBER, "0", "999999"],
            "dataset": [*NOT_A_NUMBER, str(theirs["dataset"])],
        },
        missing=("trace", "dataset"),
        state=count(DatasetItem),
    ),
    "promote page": Walk(
        url=lambda t, rows: project_url(t, "datasets-promote"),
        method="get",
        valid=lambda mine, theirs: {"trace": mine["trace"], "dataset": str(mine["dataset"])},
        wrong=lambda mine, theirs: {
            "trace": ["x" * 257, "no-such-trace", theirs["trace"]],
            "span": ["no-such-span"],
            "item": [*NOT_A_NUMBER, "999999"],
            "dataset": [*NOT_A_NUMBER, str(theirs["dataset"])],
        },
        state=nothing,
        expected=(400,),
    ),
    "promote matching": Walk(
        url=lambda t, rows: project_url(t, "datasets-promote-matching"),
        valid=lambda mine, theirs: {
            "filter": "status=error",
            "dataset": str(mine["dataset"]),
            "accept_output": "on",
            "update_existing": "on",
        },
        wrong=lambda mine, theirs: {
            "filter": ["status=error&" + "x" * 8000, "name_contains=%00"],
            "dataset": [*NOT_A_NUMBER, str(theirs["dataset"])],
        },
        missing=("dataset",),
        state=count(DatasetItem),
    ),
    "promote matching page": Walk(
        url=lambda t, rows: project_url(t, "datasets-promote-matching"),
        method="get",
        valid=lambda mine, theirs: {"filter": "status=error"},
        wrong=lambda mine, theirs: {"filter": ["name_contains=%00", "x" * 8001]},
        state=nothing,
        expected=(400,),
    ),
    "export": Walk(
        url=dataset_url("datasets-exports"),
        valid=lambda mine, theirs: {"version": "1", "format": "jsonl"},
        wrong=lambda mine, theirs: {
            "version": [*NOT_A_NUMBER, "0", "9"],
            "format": ["xml", "JSONL"],
        },
        missing=("format",),
        state=count(DatasetExport),
    ),
    "experiment results": Walk(
        url=lambda t, rows: project_url(t, "experiments-detail", experiment_pk=rows["candidate"]),
        method="get",
        valid=lambda mine, theirs: {"after": "a"},
        wrong=lambda mine, theirs: {"after": ["x" * 301]},
        state=nothing,
        expected=(400,),
    ),
    "compare": Walk(
        url=lambda t, rows: project_url(t, "experiments-compare", experiment_pk=rows["candidate"]),
        method="get",
        valid=lambda mine, theirs: {"baseline": str(mine["baseline"])},
        wrong=lambda mine, theirs: {"baseline": [*NOT_A_NUMBER, "0", str(theirs["baseline"])]},
        missing=("baseline",),
        form="compare_form",
        state=nothing,
        expected=(400,),
    ),
}


def world(tenant: Tenant, trace_id: str) -> Rows:
    """A dataset of two versions, an open queue taking its items, a trace that failed,
    and two experiments."""
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, [{"id": "a", "input": "one"}])
    import_rows(tenant, dataset, [{"id": "b", "input": "two"}])
    queue = make_queue(tenant, configs=[expected_config(tenant)], overlap=1)
    trace = make_trace(tenant, name="billing failure", status="error", external_id=trace_id)
    actor = Actor(user=tenant.owner)
    with tenant_scope(tenant.organization.pk):
        experiments = [
            services.experiment_create(actor=actor, dataset=dataset, name=name).pk
            for name in ("baseline", "candidate")
        ]
        item = DatasetItem.objects.get(dataset=dataset, key="a")
    return {
        "dataset": dataset.pk,
        "item": item.pk,
        "queue": queue.pk,
        "trace": trace.external_id,
        "baseline": experiments[0],
        "candidate": experiments[1],
    }


@pytest.fixture
def worlds(tenant, other_tenant) -> tuple[Rows, Rows]:
    return world(tenant, "bill-1"), world(other_tenant, "globex-bill-1")


@pytest.mark.parametrize("name", list(WALKS))
def test_each_form_refuses_what_is_wrong_beside_the_field(name, tenant, worlds):
    walk = WALKS[name]
    mine, theirs = worlds
    client = Client()
    client.force_login(tenant.owner)
    url = walk.url(tenant, mine)
    before = walk.state(tenant)
    valid = walk.valid(mine, theirs)
    wrong = walk.wrong(mine, theirs)
    cases = [(field, value, True) for field, values in wrong.items() for value in values]
    every_field = sorted({*valid, *wrong})
    cases += [(field, NUL, False) for field in every_field]
    for field, value, shown in cases:
        response = send(client, walk.method, url, {**valid, field: value})
        what = f"{name}: {field}={value!r}"
        assert response.status_code in ((400,) if value == NUL else walk.expected), what
        if shown:
            assert field in response.context[walk.form].errors, what
    for field in walk.missing:
        left = {k: v for k, v in valid.items() if k != field}
        response = send(client, walk.method, url, left)
        assert response.status_code in walk.expected, f"{name}: without {field}"
        assert field in response.context[walk.form].errors, f"{name}: without {field}"
    assert walk.state(tenant) == before, f"{name}: something was written"
    # Bytes that are no UTF-8 decode as U+FFFD: text that may well be valid, never a 5xx.
    for field in every_field:
        response = send(client, walk.method, url, {**valid, field: BAD_UTF8})
        assert response.status_code < 500, f"{name}: {field} not UTF-8"
    # The valid base is taken (the GET pages answer it; the forms' writes are their tests').
    if walk.method == "get":
        assert send(client, "get", url, valid).status_code == 200, name


def test_the_import_refuses_a_missing_file_and_an_unknown_format(tenant, worlds):
    mine, _theirs = worlds
    client = Client()
    client.force_login(tenant.owner)
    url = project_url(tenant, "datasets-import", dataset_pk=mine["dataset"])
    before = count(DatasetItem)(tenant)

    def upload() -> SimpleUploadedFile:
        return SimpleUploadedFile("rows.jsonl", b'{"id": "c", "input": "three"}\n')

    for data, field in (
        ({"format": "jsonl"}, "file"),
        ({"file": upload(), "format": "xml"}, "format"),
        ({"file": SimpleUploadedFile("empty.jsonl", b""), "format": "jsonl"}, "file"),
    ):
        response = client.post(url, data)
        assert response.status_code == 422, field
        assert field in response.context["form"].errors, field
        assert f'id="import-{field}-error"' in response.content.decode(), field
    for field in ("format", "atomic"):
        response = client.post(url, {"file": upload(), field: NUL}, HTTP_ACCEPT="text/html")
        assert response.status_code == 400, field
    assert count(DatasetItem)(tenant) == before
    assert client.post(url, {"file": upload(), "format": "jsonl"}).status_code == 200
    assert count(DatasetItem)(tenant) == before + 1


def test_a_refused_field_is_marked_and_what_was_typed_kept(tenant, worlds):
    mine, theirs = worlds
    client = Client()
    client.force_login(tenant.owner)
    url = project_url(tenant, "datasets-promote")
    body = {
        "trace": mine["trace"],
        "dataset": str(theirs["dataset"]),
        "failure_reason": "wrong dose",
        "expected_output": "2 g",
        "accept_output": "on",
    }
    response = client.post(url, body)
    page = response.content.decode()
    assert response.status_code == 422
    assert 'id="promote-dataset-error"' in page
    assert 'aria-describedby="promote-dataset-error"' in page
    assert 'value="wrong dose"' in page and ">2 g</textarea>" in page
    # A source of another organization is none of this project's: named, not found.
    response = client.post(url, body | {"trace": theirs["trace"], "dataset": str(mine["dataset"])})
    assert response.status_code == 422
    page = response.content.decode()
    assert 'id="promote-trace-error" role="alert">No such trace in this project.' in page
    assert f'value="{theirs["trace"]}"' in page  # the trace id asked, kept in its field


def test_a_refused_send_answers_the_page_it_came_from(tenant, worlds):
    mine, theirs = worlds
    client = Client()
    client.force_login(tenant.owner)
    url = project_url(tenant, "datasets-send-to-queue", dataset_pk=mine["dataset"])
    item_page = project_url(
        tenant, "datasets-item", dataset_pk=mine["dataset"], dataset_item_pk=mine["item"]
    )
    body = {"queue_id": str(theirs["queue"]), "item_id": str(mine["item"]), "next": item_page}
    response = client.post(url, body)
    assert response.status_code == 400
    assert response.context["item"].pk == mine["item"]
    assert 'id="send-queue-error"' in response.content.decode()
    # From the dataset's items (or anywhere else): the items page.
    response = client.post(url, body | {"next": "https://elsewhere.example/"})
    assert response.status_code == 400 and "rows" in response.context
    assert count(QueueItem)(tenant) == 0


@pytest.mark.parametrize(
    "form_class, kwargs",
    [
        (dataset_forms.DatasetForm, {}),
        (dataset_forms.PromoteForm, {"describe": lambda source: {}, "posting": True}),
        (dataset_forms.PromoteMatchingForm, {"posting": True}),
        (dataset_forms.ResultsPageForm, {}),
    ],
)
@pytest.mark.parametrize("bad", UNSTORABLE)
def test_the_forms_refuse_unstorable_text_without_the_middleware(form_class, kwargs, bad, tenant):
    if form_class in (dataset_forms.PromoteForm, dataset_forms.PromoteMatchingForm):
        kwargs = kwargs | {"project": tenant.project}
    with tenant_scope(tenant.organization.pk):
        form = form_class(data={}, **kwargs)
        text_fields = [n for n, f in form.fields.items() if isinstance(f, forms.CharField)]
        assert text_fields
        form = form_class(data={name: bad for name in text_fields}, **kwargs)
        assert not form.is_valid()
        for name in text_fields:
            assert name in form.errors, name


def test_the_page_module_reads_input_only_through_forms():
    source = (ROOT / "datasets/views.py").read_text()
    assert not HAND_READ.findall(source), "datasets/views.py reads request input by hand"
