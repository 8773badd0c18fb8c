"""One time zone rule: pages show times in the user's chosen zone and say which; the API stays UTC."""

from __future__ import annotations

import zoneinfo
from datetime import UTC
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_pages_default_to_utc_and_say_so(page_for: Any, pending_release: Any) -> None:
    body = page_for("viewer").get(f"/releases/{pending_release.pk}/").content.decode()
    assert (
        pending_release.created_at.astimezone(zoneinfo.ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M UTC") in body
    )
    assert "times in UTC" in body


def test_profile_form_saves_a_zone_and_pages_then_show_times_in_it(
    page_for: Any, users: dict[str, Any], pending_release: Any
) -> None:
    from controlplane.models import AuditEvent
    from web.models import UserPreference

    client = page_for("viewer")
    assert client.get("/profile/").status_code == 200
    response = client.post("/profile/", {"time_zone": "America/New_York"})
    assert response.status_code == 302 and response["Location"] == "/profile/"
    assert UserPreference.objects.get(user=users["viewer"]).time_zone == "America/New_York"
    assert AuditEvent.objects.filter(object_type="web.userpreference", action="update").exists()

    body = client.get(f"/releases/{pending_release.pk}/").content.decode()
    local = pending_release.created_at.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert local.strftime("%Y-%m-%d %H:%M ") + local.tzname() in body  # EST in December, EDT in summer
    assert f"times in {local.tzname()}" in body
    # another user still sees UTC
    other = page_for("operator").get(f"/releases/{pending_release.pk}/").content.decode()
    assert "times in UTC" in other

    # the API stays in UTC ISO 8601 whatever the profile says
    api = client.get(f"/api/v1/releases/{pending_release.pk}/").json()
    assert api["created_at"].endswith(("Z", "+00:00"))


def test_an_unknown_zone_is_refused_at_the_field_and_nothing_is_stored(
    page_for: Any, users: dict[str, Any]
) -> None:
    from web.models import UserPreference

    client = page_for("viewer")
    response = client.post("/profile/", {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'aria-invalid="true"' in body and "is not a known IANA time zone" in body
    assert not UserPreference.objects.filter(user=users["viewer"]).exists()


def test_browser_zone_uses_the_zone_the_browser_reports(page_for: Any, pending_release: Any) -> None:
    client = page_for("viewer")
    client.post("/profile/", {"time_zone": "browser"})
    client.cookies["browser_tz"] = "Asia/Tokyo"
    assert "times in JST" in client.get("/").content.decode()
    client.cookies["browser_tz"] = "Not/AZone"
    assert "times in UTC" in client.get("/").content.decode()


def test_chart_times_are_drawn_in_the_readers_zone_and_the_axis_names_it() -> None:
    """Plotly drops a date's offset and draws its wall time: the server moves chart times into the
    reader's zone (trace points, axis range, markers and spans) and names the zone on the axis."""
    import json
    from datetime import datetime, timedelta

    from django.template.loader import render_to_string
    from django.utils import timezone

    from controlplane.lib.charts import Chart, in_zone, line_figure

    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # Berlin changes to summer time at 01:00 UTC
    xs = [start + timedelta(hours=h) for h in range(4)]
    figure = line_figure(
        title="Budget",
        series=[{"name": "remaining", "x": xs, "y": [1.0, 0.9, 0.8, 0.7]}],
        y_title="budget",
        x_range=(xs[0], xs[-1]),
        markers=[{"at": xs[1], "kind": "release", "label": "release 7"}],
    )
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    moved = in_zone(figure, berlin)
    assert moved["data"][0]["x"] == [
        "2026-03-29T01:30:00",
        "2026-03-29T03:30:00",
        "2026-03-29T04:30:00",
        "2026-03-29T05:30:00",
    ]
    assert moved["layout"]["xaxis"]["range"] == ["2026-03-29T01:30:00", "2026-03-29T05:30:00"]
    assert "2026-03-29T03:30:00" in json.dumps(moved["layout"]["shapes"])
    assert moved["layout"]["xaxis"]["title"]["text"].endswith("(Europe/Berlin)")
    assert figure["data"][0]["x"][0] == xs[0]  # the input is left alone

    with timezone.override(berlin):
        html = render_to_string("includes/chart.html", {"chart": Chart("budget-chart", figure)})
    assert "2026-03-29T03:30:00" in html and "(Europe/Berlin)" in html
    with timezone.override(zoneinfo.ZoneInfo("UTC")):
        html = render_to_string("includes/chart.html", {"chart": Chart("budget-chart", figure)})
    assert "2026-03-29T01:30:00" in html and "(UTC)" in html
