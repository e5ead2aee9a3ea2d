"""Sample agent runs for the local demo stack, stored through the ingestion path."""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from hitl import tenancy
from hitl.audit import Actor
from projects.demo import DemoContext
from projects.models import Organization, Project
from traces.ingest.validation import parse_events
from traces.services import ingest_batch

QUESTIONS = [
    (
        "What is the maximum daily dose of acetaminophen for an adult with cirrhosis?",
        "For adults with cirrhosis, limit acetaminophen to 2 g per day.",
    ),
    (
        "Can metformin be continued before a contrast CT in a patient with eGFR 35?",
        "Hold metformin at the time of contrast and for 48 hours after if eGFR is 30-44.",
    ),
    (
        "Which anticoagulant is preferred in pregnancy for a DVT?",
        "Low-molecular-weight heparin is preferred; warfarin and DOACs are avoided.",
    ),
    (
        "Is amoxicillin safe with a documented penicillin rash?",
        "Amoxicillin is contraindicated; consider cephalexin after a risk assessment.",
    ),
    (
        "What is the first-line treatment for uncomplicated cystitis in women?",
        "Nitrofurantoin 100 mg twice daily for 5 days.",
    ),
]


def _run_events(n: int, rng: random.Random) -> list[dict]:
    question, answer = QUESTIONS[n % len(QUESTIONS)]
    run_id = f"demo-run-{n:03d}"
    start = timezone.now() - timedelta(hours=n * 3, minutes=rng.randint(0, 59))
    failed = n % 7 == 3
    documents = [
        {"id": f"formulary-{rng.randint(100, 999)}", "score": round(rng.uniform(0.6, 0.95), 2),
         "content": f"Formulary excerpt relevant to: {question[:60]}"}
        for _ in range(3)
    ]  # fmt: skip

    def at(seconds: float) -> str:
        return (start + timedelta(seconds=seconds)).isoformat()

    events = [
        {"type": "trace", "body": {
            "id": run_id, "name": "clinical question", "session_id": f"demo-session-{n // 3}",
            "input": {"question": question}, "output": {"answer": answer},
            "tags": ["demo", "formulary"], "environment": "staging", "release": "2026.11",
            "user_id": f"clinician-{n % 4}", "start_time": at(0), "end_time": at(6.5),
            "metadata": {"department": ["cardiology", "internal", "obstetrics"][n % 3]},
        }},
        {"type": "span", "body": {
            "id": "agent", "trace_id": run_id, "kind": "agent", "name": "answer question",
            "start_time": at(0), "end_time": at(6.5), "input": {"question": question},
            "output": {"answer": answer},
        }},
        {"type": "span", "body": {
            "id": "retrieve", "trace_id": run_id, "parent_id": "agent", "kind": "retrieval",
            "name": "formulary search", "start_time": at(0.1), "end_time": at(0.9),
            "input": {"query": question}, "output": {"documents": documents},
        }},
        {"type": "span", "body": {
            "id": "lookup", "trace_id": run_id, "parent_id": "agent", "kind": "tool",
            "name": "dose_calculator", "start_time": at(1.0), "end_time": at(1.4),
            "input": {"drug": "acetaminophen"}, "output": None if failed else {"max_mg": 2000},
            "status": "error" if failed else "ok",
            "error": "dose_calculator timed out after 400 ms" if failed else "",
        }},
        {"type": "span", "body": {
            "id": "answer", "trace_id": run_id, "parent_id": "agent", "kind": "llm",
            "name": "compose answer", "model": "gpt-4o", "provider": "openai",
            "start_time": at(1.5), "end_time": at(6.4),
            "input": [{"role": "system", "content": "Answer from the formulary only."},
                      {"role": "user", "content": question}],
            "output": [{"role": "assistant", "content": answer}],
            "input_tokens": rng.randint(800, 2400), "output_tokens": rng.randint(60, 300),
            "cost": round(rng.uniform(0.004, 0.02), 5), "status": "ok",
        }},
        {"type": "score", "body": {
            "id": f"{run_id}-faithfulness", "trace_id": run_id, "name": "faithfulness",
            "value": round(rng.uniform(0.2, 1.0), 2), "source": "llm_judge",
            "source_name": "judge-gpt-4o", "source_version": "v2",
            "rationale": "Compared the answer with the retrieved formulary excerpts.",
        }},
    ]  # fmt: skip
    if n % 5 == 1:
        events.append({"type": "feedback", "body": {
            "id": f"{run_id}-thumbs", "trace_id": run_id, "kind": "thumbs", "value": "down",
            "comment": "The dose is wrong for renal impairment.", "end_user_id": "clinician-1",
        }})  # fmt: skip
    return events


def ingest_demo_traces(*, organization: Organization, project: Project, runs: int = 24) -> int:
    rng = random.Random(7)
    events = [event for n in range(runs) for event in _run_events(n, rng)]
    with tenancy.tenant_scope(organization.pk):
        result = ingest_batch(
            actor=Actor(source="command"), project=project, batch=parse_events(events)
        )
    if result.rejections:
        raise RuntimeError(f"demo traces rejected: {result.rejections[:3]}")
    return result.stored["traces"]


def demo_step(context: DemoContext) -> str:
    """The demo's sample agent runs (registered in :class:`traces.apps.TracesConfig`)."""
    stored = ingest_demo_traces(organization=context.organization, project=context.project)
    return f"sample traces ingested: {stored}"
