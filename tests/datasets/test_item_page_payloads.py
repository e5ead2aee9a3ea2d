"""The dataset item page reads its input and expected output through the renderer the
trace and review pages use (``traces.payloads.render_payload``): a conversation reads
as messages with their roles and tool calls, not as indented JSON, and markup inside
stays escaped text."""

from __future__ import annotations

from datasets.models import DatasetItem
from hitl import tenancy
from tests.datasets.helpers import import_rows, make_dataset
from tests.page_clients import project_url, signed_in

CHAT = [
    {"role": "system", "content": "You are a careful pharmacist."},
    {"role": "user", "content": "Dose of paracetamol for 20 kg? <script>alert(1)</script>"},
]
ANSWER = {
    "role": "assistant",
    "content": "15 mg/kg, so 300 mg.",
    "tool_calls": [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup_dose", "arguments": '{"drug": "paracetamol"}'},
        }
    ],
}


def _item_page(tenant, rows):
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, rows)
    with tenancy.tenant_scope(tenant.organization.pk):
        item = DatasetItem.objects.get(dataset=dataset)
    url = project_url(tenant, "datasets-item", dataset_pk=dataset.pk, dataset_item_pk=item.pk)
    page = signed_in(tenant.owner).get(url)
    assert page.status_code == 200
    return page.content.decode()


def _section(body: str, element_id: str) -> str:
    start = body.index(f'id="{element_id}"')
    return body[start : body.index('<div class="payload-label">', start)]


def test_a_conversation_reads_as_messages_on_the_item_page(tenant):
    body = _item_page(tenant, [{"id": "a", "input": CHAT, "expected_output": ANSWER}])
    given = _section(body, "item-input")
    assert '<div class="conversation">' in given
    assert '<div class="msg system"><div class="msg-role">System</div>' in given
    assert '<div class="msg user"><div class="msg-role">User</div>' in given
    assert "You are a careful pharmacist." in given
    # Markup in a message is text, never markup.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in given and "<script>" not in given
    # No indented JSON of the list: the roles are labels, not keys.
    assert '"role"' not in given and "&quot;role&quot;" not in given

    expected = body[body.index('id="item-expected"') :]
    assert '<div class="msg assistant"><div class="msg-role">Assistant</div>' in expected
    assert "15 mg/kg, so 300 mg." in expected
    assert "Tool call: lookup_dose · call_1" in expected
    assert "paracetamol" in expected


def test_plain_text_and_records_read_as_text_and_labelled_fields(tenant):
    body = _item_page(
        tenant, [{"id": "b", "input": {"question": "Max dose?"}, "expected_output": "4 g a day"}]
    )
    given = _section(body, "item-input")
    assert '<div class="field-name">question</div><p class="text">Max dose?</p>' in given
    assert '<div class="payload" id="item-expected"><p class="text">4 g a day</p></div>' in body
