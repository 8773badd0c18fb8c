"""web/staticfinders.py: Plotly's JS served from the installed package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.staticfiles import finders

from web.staticfinders import STATIC_PATH, PlotlyFinder


def test_it_finds_plotly_in_the_installed_package() -> None:
    found = finders.find(STATIC_PATH)
    assert found and Path(found).name == "plotly.min.js" and Path(found).stat().st_size > 1_000_000


def test_it_lists_the_file_for_collectstatic_under_vendor() -> None:
    listed = list(PlotlyFinder().list([]))
    assert [(path, storage.prefix) for path, storage in listed] == [("plotly.min.js", "vendor")]
    assert PlotlyFinder().find("vendor/other.js") == ""
    assert PlotlyFinder().find(STATIC_PATH, find_all=True) == [finders.find(STATIC_PATH)]


def test_the_live_server_serves_it_as_javascript(client: Any, db: Any) -> None:
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
