"""Check that every visible form control of a page has a label (for keyboard and screen-reader users)."""

from __future__ import annotations

from html.parser import HTMLParser

CONTROLS = {"input", "select", "textarea"}


class _Controls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.label_for: set[str] = set()
        self.label_depth = 0
        self.unlabelled: list[str] = []
        self.pending: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "label":
            self.label_depth += 1
            if attributes.get("for"):
                self.label_for.add(attributes["for"])
        if tag in CONTROLS and attributes.get("type") not in ("hidden", "submit", "button"):
            if self.label_depth or attributes.get("aria-label") or attributes.get("aria-labelledby"):
                return
            self.pending.append((tag, attributes))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.label_depth -= 1


def unlabelled_controls(html: str) -> list[str]:
    parser = _Controls()
    parser.feed(html)
    return [f"<{tag} name={attrs.get('name')!r} id={attrs.get('id')!r}>" for tag, attrs in parser.pending
            if not attrs.get("id") or attrs["id"] not in parser.label_for]
