"""The contract between each app's test data and the route-walking isolation test.

Every app with routes provides ``tests/<app>/isolation.py`` with a function::

    def populate(tenant: Tenant) -> IsolationData

which creates at least one row of each of the app's tenant-owned models in ``tenant``
(the victim organization) and returns:

* ``kwargs``: a value for every URL keyword argument the app's routes use
  (``{"queue_pk": queue.pk, "trace_external_id": trace.external_id}``); ``pk`` and the
  lookup kwarg of a viewset are filled automatically from the view's ``scoped_model``.
* ``secret_kwargs``: names of kwargs that are bearer secrets (an invitation token): the
  attacker never holds the victim's, so the walker uses the attacker's own value.
* ``markers``: strings that appear only in the victim's data (names, texts), which must
  never show up in a response to the other organization.

The walker (tests/test_tenant_isolation.py) calls every route in the URL conf with every
method as the other organization's owner (session) and API key, with the victim's slugs
and ids and then with the attacker's own slugs and the victim's ids, and proves that no
response leaks a marker and no row of the victim changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class IsolationData:
    kwargs: dict[str, Any] = field(default_factory=dict)
    markers: list[str] = field(default_factory=list)
    secret_kwargs: set[str] = field(default_factory=set)
