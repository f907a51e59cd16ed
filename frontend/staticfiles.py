"""Static-files finder that serves plotly.js from the pinned ``plotly`` package (never a CDN).

The dashboard loads ``{% static 'vendor/plotly.min.js' %}``; this finder maps that one name onto
``plotly/package_data/plotly.min.js``, so the browser gets exactly the plotly.js version that
``requirements.txt`` pins, both from ``collectstatic`` (``make run``) and from WhiteNoise's finder
mode (tests, ``manage.py runserver``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor"
FILENAME = "plotly.min.js"


def _package_data() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data"


class PlotlyFinder(BaseFinder):
    """Finds ``vendor/plotly.min.js`` and nothing else."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.storage = FileSystemStorage(location=str(_package_data()))
        self.storage.prefix = PREFIX  # type: ignore[attr-defined]  # read by collectstatic and WhiteNoise

    def check(self, **kwargs: Any) -> list[Error]:
        if not (_package_data() / FILENAME).is_file():
            return [Error(f"{FILENAME} is missing from the plotly package", hint="pip install -r requirements.txt",
                          id="frontend.E001")]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        find_all = find_all or bool(kwargs.get("all"))
        if path == f"{PREFIX}/{FILENAME}":
            found = str(_package_data() / FILENAME)
            return [found] if find_all else found
        return [] if find_all else ""

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        yield FILENAME, self.storage
