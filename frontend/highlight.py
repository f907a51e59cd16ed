"""Read-only syntax highlighting of user modules, done on the server with Pygments (no JS)."""

from __future__ import annotations

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

# Colours come from static/frontend/pygments.css (HtmlFormatter(style="default").get_style_defs(".highlight")).
_FORMATTER = HtmlFormatter(cssclass="highlight", linenos="inline", wrapcode=True)


def highlight_python(source: str) -> SafeString:
    """HTML for ``source``; Pygments escapes every token, so the result is safe to embed."""
    return mark_safe(highlight(source, PythonLexer(), _FORMATTER))
