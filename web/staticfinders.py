"""Serve Plotly's JavaScript from the installed `plotly` package as our own static file.

The dashboard's CSP allows scripts from 'self' only, so Plotly cannot come from a CDN; vendoring
the 4 MB bundle would mean a copy to keep in step with the Python package. This finder exposes
`plotly/package_data/plotly.min.js` as `vendor/plotly.min.js`: `runserver`, the test live server
and WhiteNoise (with finders) serve it directly, and `collectstatic` copies it for production.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import CheckMessage, Error
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor"
FILENAME = "plotly.min.js"
STATIC_PATH = f"{PREFIX}/{FILENAME}"


def plotly_package_data() -> Path | None:
    """The folder holding plotly.min.js, or None when plotly is not installed."""
    try:
        import plotly
    except ImportError:
        return None
    folder = Path(plotly.__file__).resolve().parent / "package_data"
    return folder if (folder / FILENAME).is_file() else None


class PlotlyFinder(BaseFinder):
    """Finds exactly one file: `vendor/plotly.min.js`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.folder = plotly_package_data()

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        if self.folder is None:
            return [
                Error(
                    "plotly is not installed: the dashboard's charts need plotly/package_data/plotly.min.js",
                    id="dashboard.E001",
                )
            ]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        # Django 5.2 still passes the deprecated `all=` keyword from some callers.
        find_all = find_all or bool(kwargs.get("all", False))
        if self.folder is not None and path == STATIC_PATH:
            match = str(self.folder / FILENAME)
            return [match] if find_all else match
        return [] if find_all else ""

    def list(self, ignore_patterns: Any) -> Any:
        if self.folder is None:
            return
        storage = FileSystemStorage(location=str(self.folder))
        # collectstatic and WhiteNoise join storage.prefix with the listed path
        storage.prefix = PREFIX  # type: ignore[attr-defined]
        yield FILENAME, storage
