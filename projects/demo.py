"""Demo data steps: each app contributes its part of the demo organization.

``seed_demo`` (in this app) creates the organization, its people, a project and an API
key, then runs every registered step in order. Higher apps register theirs from their
``AppConfig.ready()``, so the lowest app never imports the apps above it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hitl.audit import Actor
from projects.models import Organization, Project


@dataclass
class DemoContext:
    """What a demo step may build on; ``people`` maps each demo email to its user."""

    organization: Organization
    project: Project
    actor: Actor
    people: dict[str, Any] = field(default_factory=dict)


# A step runs inside the organization's tenant scope and returns a line to print, or "".
DemoStep = Callable[[DemoContext], str]
_steps: dict[str, tuple[int, DemoStep]] = {}


def register_demo_step(name: str, step: DemoStep, *, order: int) -> None:
    """Adds ``step`` to the demo; registering the same name again replaces it."""
    _steps[name] = (order, step)


def demo_steps() -> list[tuple[str, DemoStep]]:
    return [(name, step) for name, (_order, step) in sorted(_steps.items(), key=_by_order)]


def _by_order(entry: tuple[str, tuple[int, DemoStep]]) -> tuple[int, str]:
    name, (order, _step) = entry
    return order, name
