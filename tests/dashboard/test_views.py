"""The dashboard shell's pages: overview, audit log, reports."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "admin"])
def test_it_shows_the_overview_to_every_role(page_for: Any, evaluated: dict[str, Any], role: str) -> None:
    response = page_for(role).get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "burning-availability" in body and "healthy-latency" in body and "silent-freshness" in body


def test_it_sends_anonymous_users_to_the_login_page(page_for: Any) -> None:
    response = page_for(None).get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_it_refuses_users_without_a_role(page_for: Any) -> None:
    assert page_for("outsider").get("/").status_code == 403


def test_it_colours_and_names_each_slo_state(page_for: Any, evaluated: dict[str, Any]) -> None:
    response = page_for("viewer").get("/")
    rows = {row.name: row for row in response.context["rows"]}
    assert rows["burning-availability"].state == "page"
    assert rows["healthy-latency"].state == "ok"
    # never evaluated: no verdict, and no numbers that look like one
    assert rows["silent-freshness"].state == "not_evaluated"
    assert rows["silent-freshness"].sli is None
    body = response.content.decode()
    assert 'class="badge status-bad">paging' in body
    assert 'class="badge status-ok">ok' in body
    assert "not evaluated yet" in body


def test_it_shows_burn_rates_and_firing_alerts(page_for: Any, evaluated: dict[str, Any]) -> None:
    response = page_for("viewer").get("/")
    burning = next(r for r in response.context["rows"] if r.name == "burning-availability")
    # 30% bad for the last 40 minutes of an SLO allowing 1%: the 1h burn rate is 30 x 40/60 = 20
    assert burning.burn_1h == pytest.approx(20.0, rel=0.05)
    assert burning.remaining is not None and burning.remaining < 1
    assert any("page" in alert for alert in burning.alerts)
    assert "20.00×" in response.content.decode()


def test_it_filters_by_state_tier_and_class(page_for: Any, evaluated: dict[str, Any]) -> None:
    client = page_for("viewer")
    names = lambda r: [row.name for row in r.context["rows"]]  # noqa: E731
    assert names(client.get("/?state=page")) == ["burning-availability"]
    assert names(client.get("/?tier=edge")) == ["healthy-latency"]
    assert set(names(client.get("/?tier=all"))) == {"burning-availability", "silent-freshness"}
    assert names(client.get("/?class=batch")) == []
    assert len(names(client.get("/?class=interactive"))) == 3
    # unknown values are ignored, not an error page
    assert len(names(client.get("/?state=bogus&tier=moon&sort=nonsense"))) == 3


def test_it_sorts_on_the_server_both_ways(page_for: Any, evaluated: dict[str, Any]) -> None:
    client = page_for("viewer")
    ascending = [r.name for r in client.get("/?sort=burn_1h").context["rows"]]
    # missing burn rates sort last whichever the direction of the known ones
    assert ascending == ["healthy-latency", "burning-availability", "silent-freshness"]
    descending = [r.name for r in client.get("/?sort=-slo").context["rows"]]
    assert descending == sorted(descending, reverse=True)
    body = client.get("/?sort=slo").content.decode()
    assert 'aria-sort="ascending"' in body and "sort=-slo" in body


def test_it_shows_services_without_slos_and_the_fleet(
    page_for: Any, users: dict[str, Any], evaluated: dict[str, Any], gateways: dict[str, Any]
) -> None:
    from slo.services import service_create

    service_create(
        actor=users["operator"], data={"name": "empty-svc", "service_class": "batch", "tiers": ["edge"]}
    )
    response = page_for("viewer").get("/")
    body = response.content.decode()
    assert "empty-svc" in body and "no SLOs" in body
    assert response.context["fleet"]["total"] == 4
    assert "nacked" in body


def test_it_renders_the_overview_of_many_slos_in_bounded_queries(
    page_for: Any, make_slo: Any, django_assert_max_num_queries: Any
) -> None:
    for i in range(30):
        make_slo(f"slo-{i:02d}")
    client = page_for("viewer")
    with django_assert_max_num_queries(14):
        response = client.get("/")
    assert len(response.context["rows"]) == 30


def test_it_lists_audit_events_with_filters(page_for: Any, evaluated: dict[str, Any]) -> None:
    client = page_for("viewer")
    response = client.get("/audit/")
    assert response.status_code == 200
    assert "slo.create" in response.content.decode() or response.context["page"].paginator.count > 0
    action = response.context["page"][0].action
    filtered = client.get("/audit/", {"action": action})
    assert all(e.action == action for e in filtered.context["page"])
    assert client.get("/audit/", {"action": "no-such-action"}).context["page"].paginator.count == 0


def test_it_pages_the_audit_log_in_bounded_queries(
    page_for: Any, make_slo: Any, django_assert_max_num_queries: Any
) -> None:
    for i in range(20):
        make_slo(f"audit-{i}")
    client = page_for("viewer")
    with django_assert_max_num_queries(8):
        assert client.get("/audit/").status_code == 200


def test_it_shows_an_empty_reports_page_until_reports_exist(page_for: Any) -> None:
    response = page_for("viewer").get("/reports/")
    assert response.status_code == 200
    assert "No reports yet" in response.content.decode()
    assert page_for("outsider").get("/reports/").status_code == 403


def test_the_reports_list_links_each_report_as_html_csv_and_json(
    page_for: Any, users: Any, service: Any
) -> None:
    import csv
    import io

    from slo.reports.services import report_generate

    report = report_generate(actor=users["admin"], data={"service": service.name, "period": "week"})
    client = page_for("viewer")
    page = client.get("/reports/").content.decode()
    links = {
        fmt: re.search(rf'<a href="([^"]+)"[^>]*>{fmt}</a>', page).group(1) for fmt in ("HTML", "CSV", "JSON")
    }
    assert links == {
        "HTML": f"/reports/{report.pk}/",
        "CSV": f"/api/v1/reports/{report.pk}/csv/",
        "JSON": f"/api/v1/reports/{report.pk}/",
    }
    # each answers the browser's session, in its format
    html = client.get(links["HTML"])
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    as_csv = client.get(links["CSV"])
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    assert next(csv.reader(io.StringIO(as_csv.content.decode())))
    as_json = client.get(links["JSON"], HTTP_ACCEPT="application/json")
    assert as_json.status_code == 200 and as_json.json()["id"] == report.pk
