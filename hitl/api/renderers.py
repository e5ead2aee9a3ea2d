"""The browsable API under the site's Content-Security-Policy.

Django REST framework's browsable API templates set a few ``style`` attributes (the
"Filters" and "Extra Actions" buttons' float, fieldset borders, the search box width),
which the policy's ``style-src 'self'`` blocks. Its scripts are files and its CSRF token
a JSON script element, so scripts stay as strict as on every page: only inline style
*attributes* are allowed, and only on the browsable API's own answers
(``style-src-attr``). The one ``style`` element it writes (Pygments colours for code in
a view's description) is left out, so ``style`` elements stay refused everywhere.
"""

from __future__ import annotations

from typing import Any

from rest_framework import renderers

STYLE_ATTRIBUTES = {"style-src-attr": ["'unsafe-inline'"]}


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    def get_context(
        self, data: Any, accepted_media_type: str | None, renderer_context: dict[str, Any]
    ) -> dict[str, Any]:
        context = super().get_context(data, accepted_media_type, renderer_context)
        context["code_style"] = None
        return context

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> Any:
        response = (renderer_context or {}).get("response")
        if response is not None:
            update = getattr(response, "_csp_update", None) or {}
            response._csp_update = {**update, **STYLE_ATTRIBUTES}
        return super().render(data, accepted_media_type, renderer_context)
