"""Every template of the project, read as Django reads it: a ``{# ... #}`` comment ends on
the line it starts (Django prints one that spans lines as text on the page), so a
comment over several lines must be ``{% comment %}``. Found from the template loaders'
own directories, so a template added tomorrow is read too."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.template import engines


def _project_templates() -> list[Path]:
    base = Path(settings.BASE_DIR).resolve()
    found: list[Path] = []
    for engine in engines.all():
        for directory in engine.template_dirs:
            directory = Path(directory).resolve()
            if directory.is_relative_to(base) and ".venv" not in directory.parts:
                found += sorted(directory.rglob("*.html")) + sorted(directory.rglob("*.txt"))
    return found


def test_no_template_comment_spans_lines():
    templates = _project_templates()
    assert len(templates) >= 50, templates  # the walk found the apps' templates
    spanning = [
        f"{path.relative_to(settings.BASE_DIR)}:{number}"
        for path in templates
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if line.count("{#") > line.count("#}")
    ]
    assert not spanning, f"a {{# comment #}} that spans lines shows as text: {spanning}"
