"""SLO detail and service detail pages (slo/views.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def chart_json(body: str, chart_id: str) -> dict[str, Any]:
    """The figure a page hands to charts.js through json_script."""
    match = re.search(rf'<script id="{chart_id}" type="application/json">(.*?)</script>', body, re.S)
    assert match, f"no JSON for {chart_id}"
    return json.loads(match.group(1))


def test_it_shows_an_slo_with_its_status_and_charts(page_for: Any, evaluated: dict[str, Any]) -> None:
    slo = evaluated["burning"]
    response = page_for("viewer").get(f"/slos/{slo.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "paging" in body
    assert 'data-chart="chart-burndown"' in body and 'data-chart="chart-burn"' in body
    assert "/static/vendor/plotly.min.js" in body and "/static/js/charts.js" in body
    # no inline script: the CSP would block it
    assert not re.search(r"<script(?![^>]*(src=|type=\"application/json\"))", body)
    burn = chart_json(body, "chart-burn")
    labels = [a["text"] for a in burn["layout"]["annotations"]]
    assert any(label.startswith("page 13.44× (1h & 5m)") for label in labels), (
        labels
    )  # 14.4 scaled to 28 days
    sli = chart_json(body, "chart-sli")
    assert sli["layout"]["shapes"][0]["y0"] == 99.0


def test_the_alert_tiers_table_shows_thresholds_raised_to_1x(
    page_for: Any, evaluated: dict[str, Any]
) -> None:
    body = page_for("viewer").get(f"/slos/{evaluated['burning'].pk}/").content.decode()
    # 28 days: the 3-day ticket scales to 0.93x and fires at 1x; the 1-day one (2.8x) is untouched.
    assert "1.00× <span" in body and "(scaled 0.93×, raised to 1×)" in body
    assert body.count("raised to 1×") == 1


def test_it_has_download_links_for_openslo_and_prometheus_rules(
    page_for: Any, evaluated: dict[str, Any]
) -> None:
    slo = evaluated["healthy"]
    body = page_for("viewer").get(f"/slos/{slo.pk}/").content.decode()
    assert f"/api/v1/slos/{slo.pk}/openslo/" in body
    assert f"/api/v1/slos/{slo.pk}/prometheus-rules/" in body
    # the browser session authenticates the API
    client = page_for("viewer")
    assert client.get(f"/api/v1/slos/{slo.pk}/openslo/").status_code == 200


def test_it_says_no_data_yet_instead_of_drawing_zeros(page_for: Any, evaluated: dict[str, Any]) -> None:
    slo = evaluated["silent"]
    body = page_for("viewer").get(f"/slos/{slo.pk}/").content.decode()
    assert "not evaluated yet" in body
    assert "no data yet" in body
    assert 'data-chart="chart-sli"' not in body


def test_it_shows_alert_history_and_version_diffs(
    page_for: Any, users: dict[str, Any], evaluated: dict[str, Any]
) -> None:
    from slo.services import slo_update

    slo = evaluated["burning"]
    doc = dict(slo.spec)
    doc["objective"] = 98.5
    slo_update(actor=users["operator"], slo_id=slo.pk, data=doc, note="loosen")
    body = page_for("viewer").get(f"/slos/{slo.pk}/").content.decode()
    assert "firing" in body  # alert history
    assert "v2 by otto" in body and "loosen" in body
    assert "~ objective: 99.0 → 98.5" in body


@pytest.mark.parametrize(
    "query",
    [
        "resolution=minute&range=6h",
        "resolution=minute&range=window",
        "resolution=hour&range=7d",
        "resolution=bogus&range=bogus",
    ],
)
def test_it_accepts_any_resolution_and_range(page_for: Any, evaluated: dict[str, Any], query: str) -> None:
    response = page_for("viewer").get(f"/slos/{evaluated['burning'].pk}/?{query}")
    assert response.status_code == 200


def test_it_draws_per_minute_sli_points(page_for: Any, evaluated: dict[str, Any]) -> None:
    body = (
        page_for("viewer")
        .get(f"/slos/{evaluated['burning'].pk}/?resolution=minute&range=6h")
        .content.decode()
    )
    sli = chart_json(body, "chart-sli")
    values = [v for v in sli["data"][0]["y"] if v is not None]
    assert len(values) == 120
    assert min(values) == pytest.approx(70.0) and max(values) == pytest.approx(100.0)


def test_it_reads_an_slo_page_in_bounded_queries(
    page_for: Any, evaluated: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    client = page_for("viewer")
    # 18: the budget policy (service's, then the default) and the chart markers (releases, alerts)
    with django_assert_max_num_queries(18):
        assert client.get(f"/slos/{evaluated['burning'].pk}/").status_code == 200


def test_it_answers_404_for_unknown_slos_and_403_without_a_role(
    page_for: Any, evaluated: dict[str, Any]
) -> None:
    assert page_for("viewer").get("/slos/999999/").status_code == 404
    assert page_for("outsider").get(f"/slos/{evaluated['burning'].pk}/").status_code == 403


def test_it_shows_service_telemetry_charts(
    page_for: Any, service: Any, telemetry: int, evaluated: dict[str, Any]
) -> None:
    response = page_for("viewer").get("/services/shelf-vision/?range=6h")
    assert response.status_code == 200
    body = response.content.decode()
    latency = chart_json(body, "chart-latency")
    names = {trace["name"] for trace in latency["data"]}
    assert names == {"edge / local", "public_cloud / public_cloud"}
    edge = next(t for t in latency["data"] if t["name"] == "edge / local")
    p95 = [v for v in edge["y"] if v is not None]
    # 95% of ~104 requests falls in the 0.15-0.3 s bucket
    assert p95 and all(150 < v <= 300 for v in p95)
    assert any(a["text"].startswith("healthy-latency: 150 ms") for a in latency["layout"]["annotations"])
    cache = chart_json(body, "chart-cache")
    hit_rate = [v for v in cache["data"][0]["y"] if v is not None]
    stale_rate = [v for v in cache["data"][1]["y"] if v is not None]
    assert hit_rate and all(v == pytest.approx(75.0) for v in hit_rate)
    assert all(v == pytest.approx(10.0) for v in stale_rate)
    routes = chart_json(body, "chart-routes")
    assert {t["name"] for t in routes["data"]} == {"cache", "local", "public_cloud"}
    fallbacks = chart_json(body, "chart-fallbacks")
    assert fallbacks["data"][0]["name"] == "local → public_cloud"
    stages = chart_json(body, "chart-stages")
    assert [t["name"] for t in stages["data"]] == ["queue", "model", "network"]
    assert stages["data"][1]["y"] == [pytest.approx(60.0)]
    assert response.context["stage_table"][0]["tier"] == "edge"
    # no cost model yet: an explicit empty state
    assert "Cost per 1,000 inferences and per cache hit (per hour)</strong>: no data yet" in body


def test_it_shows_cost_per_1000_from_rollups(page_for: Any, service: Any, now: Any) -> None:
    from slo.models.budget import CostRollup

    # Rollups are written by the cost task (slo.budget.services.cost_rollup_store); a row is enough here.
    CostRollup.objects.create(
        service=service,
        route="all",
        resolution="hour",
        bucket_start=now.replace(minute=0),
        cost_model_version=1,
        requests=1000,
        cost_usd=2.5,
        cost_per_request_usd=0.0025,
        figures={"cost_per_cache_hit_usd": 0.0001},
    )
    body = page_for("viewer").get("/services/shelf-vision/").content.decode()
    cost = chart_json(body, "chart-cost")
    assert cost["data"][0]["y"] == [pytest.approx(2.5)]
    assert cost["data"][1]["y"] == [pytest.approx(0.1)]


def test_it_reads_a_service_page_in_bounded_queries(
    page_for: Any, telemetry: int, evaluated: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    client = page_for("viewer")
    # 16: with the chart markers (releases, alerts), the capacity advice and the budget responses
    with django_assert_max_num_queries(16):
        assert client.get("/services/shelf-vision/?range=7d").status_code == 200


def test_it_answers_404_for_unknown_services(page_for: Any, db: Any) -> None:
    assert page_for("viewer").get("/services/nope/").status_code == 404
