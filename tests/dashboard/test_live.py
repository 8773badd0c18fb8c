"""The live pages' JSON twins: same role as the page, the page's own figures, and the release
page's bake countdown."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone

from web.live import live_regions

pytestmark = pytest.mark.django_db


def test_regions_are_the_inner_html_of_marked_elements_with_nesting_void_tags_and_entities() -> None:
    html = (
        '<main><p data-live="as-of">As of <time datetime="x">12:00 UTC</time></p>'
        '<table><tbody data-live="rows"><tr><td>a &amp; b<br>c</td><td><img src="i.png" alt=""/></td></tr>'
        "<tr><td><div><span>&#8212;</span></div></td></tr></tbody></table>"
        '<div data-live="outer"><span data-live="inner">x</span></div><p>outside</p></main>'
    )
    regions = live_regions(html)
    assert regions == {
        "as-of": 'As of <time datetime="x">12:00 UTC</time>',
        "rows": '<tr><td>a &amp; b<br>c</td><td><img src="i.png" alt=""/></td></tr>'
        "<tr><td><div><span>&#8212;</span></div></td></tr>",
        "outer": '<span data-live="inner">x</span>',
    }


def _urls(release: Any) -> dict[str, tuple[str, str]]:
    from slo.models.catalog import Slo

    slo = Slo.objects.get(name="latency").pk
    return {
        "overview": ("/", "/live/"),
        "fleet": ("/fleet/", "/fleet/live/"),
        "slo": (f"/slos/{slo}/", f"/slos/{slo}/live/"),
        "release": (f"/releases/{release.pk}/", f"/releases/{release.pk}/live/"),
    }


def test_live_endpoints_answer_like_their_page_for_each_role(page_for: Any, pending_release: Any) -> None:
    urls = _urls(pending_release)
    anonymous, outsider, viewer = page_for(None), page_for("outsider"), page_for("viewer")
    for name, (page_url, live_url) in urls.items():
        answer = anonymous.get(live_url)
        assert answer.status_code == 302 and answer["Location"].startswith("/login/"), name
        assert outsider.get(live_url).status_code == 403, name
        # one clock for both renders, so relative ages ("29s") cannot tick between them
        with mock.patch("django.utils.timezone.now", return_value=timezone.now()):
            page = viewer.get(page_url)
            live = viewer.get(live_url)
        assert page.status_code == live.status_code == 200, name
        assert live["Content-Type"] == "application/json" and live["Cache-Control"] == "no-store"
        data = json.loads(live.content)
        page_regions = live_regions(page.content.decode())
        # the page links its twin and marks its "as of" line for screen readers
        assert f'data-live-src="{live_url}' in page.content.decode(), name
        assert 'aria-live="polite" data-live="as-of"' in page.content.decode(), name
        assert set(data["regions"]) == set(page_regions) and "as-of" in page_regions, name
        for region, html in page_regions.items():
            if region != "as-of":
                assert data["regions"][region] == html, (name, region)
        # "as of" says its zone; the page's line and the twin's moment agree (rendered together)
        assert data["as_of_text"].endswith(" UTC") and "As of <time datetime=" in data["regions"]["as-of"]
        shown = datetime.fromisoformat(data["regions"]["as-of"].split('datetime="')[1].split('"')[0])
        assert abs((datetime.fromisoformat(data["as_of"]) - shown).total_seconds()) < 2
    assert viewer.get("/releases/999999/live/").status_code == 404


def test_overview_twin_keeps_the_filters_and_shows_the_figures(
    page_for: Any, evaluated: dict[str, Any]
) -> None:
    viewer = page_for("viewer")
    rows = json.loads(viewer.get("/live/?state=page").content)["regions"]["slo-rows"]
    assert "burning-availability" in rows and "healthy-latency" not in rows
    assert "status-page" in rows or "paging" in rows
    assert json.loads(viewer.get("/live/").content)["regions"]["slo-count"] == "(3)"


def test_release_page_shows_the_bake_countdown_of_the_current_wave(
    page_for: Any, pending_release: Any
) -> None:
    from django.utils import timezone

    from routing.models.releases import Release

    started = timezone.now() - timedelta(seconds=30)
    bake_s = pending_release.waves[0]["bake_s"]
    Release.objects.filter(pk=pending_release.pk).update(
        state="rolling_out", current_wave=0, wave_phase="baking", bake_started_at=started
    )
    regions = json.loads(page_for("viewer").get(f"/releases/{pending_release.pk}/live/").content)["regions"]
    ends = (started + timedelta(seconds=bake_s)).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert "Wave 1 is baking until" in regions["waves"] and ends in regions["waves"]
    assert f'data-countdown-until="{(started + timedelta(seconds=bake_s)).isoformat()}"' in regions["waves"]
    assert "rolling out" in regions["state"]
