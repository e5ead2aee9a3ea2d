"""Raw-SQL writers state the tenant they write for; the ORM's save() check cannot see them.
And the rule import-linter cannot state: no module imports another module's private names."""

import ast
from pathlib import Path

import pytest

from hitl.audit import Actor
from hitl.tenancy import TenantScopeError, tenant_scope
from review.services.claims import queue_claim_next
from tests.review.helpers import add_traces, make_queue
from traces.ingest.validation import parse_events
from traces.services import ingest_batch


def test_ingestion_refuses_another_tenants_project_inside_a_scope(tenant, other_tenant):
    batch = parse_events([{"type": "trace", "body": {"id": "t-1", "name": "x"}}])
    with tenant_scope(tenant.organization.pk), pytest.raises(TenantScopeError):
        ingest_batch(actor=Actor(source="api"), project=other_tenant.project, batch=batch)
    with tenant_scope(other_tenant.organization.pk):
        result = ingest_batch(actor=Actor(source="api"), project=other_tenant.project, batch=batch)
    assert result.stored["traces"] == 1


def test_raw_writers_refuse_without_a_single_tenant_in_scope(tenant):
    batch = parse_events([{"type": "trace", "body": {"id": "t-2", "name": "x"}}])
    with pytest.raises(TenantScopeError):
        ingest_batch(actor=Actor(source="api"), project=tenant.project, batch=batch)


def test_claim_refuses_another_tenants_queue_inside_a_scope(tenant, other_tenant):
    queue = make_queue(other_tenant)
    add_traces(other_tenant, queue, 1)
    with tenant_scope(tenant.organization.pk), pytest.raises(TenantScopeError):
        queue_claim_next(actor=Actor(user=other_tenant.reviewer), queue=queue)
    with tenant_scope(other_tenant.organization.pk):
        lease = queue_claim_next(actor=Actor(user=other_tenant.reviewer), queue=queue)
    assert lease is not None


# --- no module reaches for another module's private names -------------------------------

PRODUCT_PACKAGES = ("hitl", "projects", "traces", "review", "datasets")
ROOT = Path(__file__).resolve().parent.parent


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _product_modules() -> dict[str, Path]:
    modules = {}
    for package in PRODUCT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The module a ``from`` import names, relative imports resolved."""
    if not level:
        return name or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def private_name_uses(module: str, source: str, is_package: bool, known: set[str]) -> list[str]:
    """Every ``from other import _name`` and ``other._name`` in ``module`` (its ``source``),
    where ``other`` is another product module; dunder names are public."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> product module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PRODUCT_PACKAGES:
                    local = alias.asname or alias.name.split(".")[0]
                    aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(module, is_package, node.level, node.module)
            if origin.split(".")[0] not in PRODUCT_PACKAGES:
                continue
            for alias in node.names:
                submodule = f"{origin}.{alias.name}"
                if submodule in known:
                    aliases[alias.asname or alias.name] = submodule
                elif _is_private(alias.name) and origin != module:
                    found.append(f"{node.lineno}: imports {origin}.{alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            dotted, value = [], node.value
            while isinstance(value, ast.Attribute):
                dotted.insert(0, value.attr)
                value = value.value
            if not isinstance(value, ast.Name) or value.id not in aliases:
                continue
            target = ".".join([aliases[value.id], *dotted])
            if target in known and target != module:
                found.append(f"{node.lineno}: uses {target}.{node.attr}")
    return found


def test_no_module_imports_another_modules_private_names():
    """A leading underscore says "this module's own": another module that needs it needs a
    public name (or the code belongs with its caller). Tests may reach in; product code
    may not."""
    modules = _product_modules()
    known = set(modules)
    found = [
        f"{path.relative_to(ROOT)}:{use}"
        for module, path in modules.items()
        for use in private_name_uses(module, path.read_text(), path.name == "__init__.py", known)
    ]
    assert not found, "\n".join(found)


def test_the_private_name_check_sees_every_form():
    known = {"hitl", "hitl.audit", "projects", "projects.services", "projects.api"}
    source = """
from hitl.audit import _actor, __all__, Actor
from . import services
from .services import _hash
from .api import _own_is_still_anothers
import hitl.audit
import projects.services as ps
hitl.audit._stack
ps._token
services._check
services.public
projects.services._x
self._private
"""
    assert private_name_uses("projects.tasks", source, False, known) == [
        "2: imports hitl.audit._actor",
        "4: imports projects.services._hash",
        "5: imports projects.api._own_is_still_anothers",
        "8: uses hitl.audit._stack",
        "9: uses projects.services._token",
        "10: uses projects.services._check",
    ]  # line 12: "projects" is bound by no import here
    # A module's own private names are its business.
    assert private_name_uses("hitl.audit", "from hitl.audit import _actor", False, known) == []
