"""Reports API: roles, validation, listing without N+1, detail, CSV; and the dashboard pages."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from slo.reports.services import report_generate

from .conftest import NOW, TZ

pytestmark = pytest.mark.django_db


@pytest.fixture
def reports(users, make_slo, backdate_versions):
    make_slo()
    backdate_versions()
    return [
        report_generate(
            actor="test",
            now=NOW + timedelta(days=7 * k),
            data={"service": "shelf-vision", "period": "week", "time_zone": TZ},
        )
        for k in range(3)
    ]


@pytest.mark.parametrize(
    ("role", "status"), [(None, 401), ("outsider", 403), ("viewer", 200), ("admin", 200)]
)
def test_reading_reports_needs_the_viewer_role(api_for, reports, role, status):
    client = api_for(role)
    assert client.get("/api/v1/reports/").status_code == status
    assert client.get(f"/api/v1/reports/{reports[0].pk}/").status_code == status
    assert client.get(f"/api/v1/reports/{reports[0].pk}/csv/").status_code == status


def test_the_list_is_paginated_filtered_and_has_no_n_plus_1(api_for, reports, django_assert_max_num_queries):
    client = api_for("viewer")
    with django_assert_max_num_queries(8):
        body = client.get("/api/v1/reports/").json()
    assert body["count"] == 3
    assert [r["period_label"] for r in body["results"]] == ["2026-W49", "2026-W48", "2026-W47"]
    assert "numbers" not in body["results"][0] and body["results"][0]["summary"]["slos"] == 1
    body = client.get("/api/v1/reports/", {"period_label": "2026-W48", "scope_value": "shelf-vision"}).json()
    assert [r["id"] for r in body["results"]] == [reports[1].pk]


def test_the_detail_has_every_number(api_for, reports):
    body = api_for("viewer").get(f"/api/v1/reports/{reports[0].pk}/").json()
    assert body["numbers"] == reports[0].numbers and body["deliveries"] == []
    assert body["url"].endswith(f"/reports/{reports[0].pk}/")


def test_the_csv_holds_every_figure_as_tidy_rows(api_for, reports):
    response = api_for("viewer").get(f"/api/v1/reports/{reports[0].pk}/csv/")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["section", "service", "subject", "metric", "value"]
    assert ["period", "", "", "label", "2026-W47"] in rows
    assert any(r[0] == "slo" and r[3] == "error_budget_remaining_ratio" for r in rows)


def test_unknown_reports_are_404_not_500(api_for, reports):
    client = api_for("viewer")
    assert client.get("/api/v1/reports/999999/").status_code == 404
    assert client.get("/api/v1/reports/abc/csv/").status_code == 404


@pytest.mark.parametrize(
    ("role", "status"), [(None, 401), ("viewer", 403), ("operator", 201), ("admin", 201)]
)
def test_generating_needs_the_operator_role(api_for, users, make_slo, backdate_versions, role, status):
    make_slo()
    backdate_versions()
    response = api_for(role).post(
        "/api/v1/reports/generate/",
        {"service": "shelf-vision", "period": "week", "start": "2026-11-16", "time_zone": TZ},
    )
    assert response.status_code == status
    if status == 201:
        assert response.json()["numbers"]["period"]["label"] == "2026-W47"


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"period": "week"}, {"service"}),
        ({"service": "shelf-vision", "team": "x", "period": "week"}, {"service"}),
        ({"service": "nope", "period": "week"}, {"service"}),
        ({"service": "shelf-vision", "period": "year"}, {"period"}),
        ({"service": "shelf-vision", "period": "week", "start": "2026-11-17"}, {"start"}),
        ({"service": "shelf-vision", "period": "week", "start": "yesterday"}, {"start"}),
        ({"service": "shelf-vision", "period": "week", "start": "2099-01-05"}, {"start"}),
        ({"service": "shelf-vision", "period": "week", "time_zone": "Nowhere/City"}, {"time_zone"}),
        ({"service": "shelf-vision", "period": "week", "recipients": "a@b.c"}, {"recipients"}),
        ({"service": "shelf-vision", "period": "week", "colour": 1}, {"colour"}),
        ({"service": 5, "period": "week"}, {"service"}),
    ],
)
def test_invalid_requests_get_400_with_paths(api_for, service, body, paths):
    response = api_for("operator").post("/api/v1/reports/generate/", body, format="json")
    assert response.status_code == 400
    assert {e["path"] for e in response.json()["errors"]} == paths


def test_a_non_object_body_is_400(api_for, service):
    response = api_for("operator").post("/api/v1/reports/generate/", [1, 2], format="json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("operator", 403), ("approver", 403), ("admin", 201)]
)
def test_writing_schedules_needs_the_admin_role(api_for, service, role, status):
    response = api_for(role).post(
        "/api/v1/report-schedules/",
        {
            "name": f"weekly-{role}",
            "service": "shelf-vision",
            "period": "week",
            "recipients": ["a@example.test"],
        },
    )
    assert response.status_code == status


def test_schedules_round_trip_through_the_api(api_for, service):
    admin = api_for("admin")
    created = admin.post(
        "/api/v1/report-schedules/", {"name": "w", "team": "vision-team", "period": "month", "time_zone": TZ}
    ).json()
    assert created["scope_kind"] == "team" and created["cron"]["day_of_month"] == "1"
    changed = admin.patch(
        f"/api/v1/report-schedules/{created['id']}/", {"recipients": ["x@example.test"]}
    ).json()
    assert changed["recipients"] == ["x@example.test"] and changed["scope_value"] == "vision-team"
    assert api_for("viewer").get("/api/v1/report-schedules/").json()["count"] == 1
    assert admin.delete(f"/api/v1/report-schedules/{created['id']}/").status_code == 204


def test_the_schema_documents_the_endpoints(api_for):
    response = api_for("viewer").get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = response.json()["paths"]
    for path in (
        "/api/v1/reports/",
        "/api/v1/reports/{id}/",
        "/api/v1/reports/{id}/csv/",
        "/api/v1/reports/generate/",
        "/api/v1/report-schedules/",
    ):
        assert path in paths
    assert "ReportGenerateRequest" in str(paths["/api/v1/reports/generate/"])


# ----------------------------------------------------------------------------- dashboard pages


def test_the_pages_render_for_viewers(client, users, make_slo, history, backdate_versions):
    history(make_slo(), seed=11)
    backdate_versions()
    report = report_generate(
        actor="test", now=NOW, data={"service": "shelf-vision", "period": "week", "time_zone": TZ}
    )
    client.force_login(users["viewer"])
    listing = client.get("/reports/")
    assert listing.status_code == 200 and b"2026-W47" in listing.content
    page = client.get(f"/reports/{report.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-chart="report-burn-0"' in html and 'id="report-burn-0" type="application/json"' in html
    assert "<script>" not in html  # the CSP allows no inline script: data goes in json_script blocks
    assert client.get("/reports/999999/").status_code == 404


def test_the_pages_refuse_users_without_a_role(client, users, reports):
    client.force_login(users["outsider"])
    assert client.get("/reports/").status_code == 403
    assert client.get(f"/reports/{reports[0].pk}/").status_code == 403
