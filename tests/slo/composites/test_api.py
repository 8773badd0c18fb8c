"""/api/v1/composites/: create, read, version, audit; bad input is 400 with field paths and stores nothing."""

from __future__ import annotations

import pytest
import yaml

from controlplane.models import AuditEvent
from slo.composites.demo import JOURNEY
from slo.demo import seed_demo_catalog
from slo.models.composites import Composite, CompositeMember, CompositeVersion

pytestmark = pytest.mark.django_db

URL = "/api/v1/composites/"


@pytest.fixture
def catalog(users):
    seed_demo_catalog(actor=users["operator"])


def problem_paths(response):
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return {p["path"] for p in response.json()["errors"]}


def with_members(members, **extra):
    return {**JOURNEY, "members": members, **extra}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (with_members([{"slo": "shelf-vision/edge-latency"}]), "members"),
        (with_members([{"slo": f"shelf-vision/m{i}"} for i in range(26)]), "members"),
        (
            with_members([{"slo": "shelf-vision/edge-latency"}, {"slo": "shelf-vision/nope"}]),
            "members[1].slo",
        ),
        (
            with_members(
                [{"slo": "shelf-vision/edge-latency"}, {"slo": "shelf-vision/cloud-latency", "weight": 0}]
            ),
            "members[1].weight",
        ),
        (
            with_members(
                [{"slo": "shelf-vision/edge-latency"}, {"slo": "shelf-vision/cloud-latency", "weight": -2}]
            ),
            "members[1].weight",
        ),
        (
            with_members([{"slo": "shelf-vision/edge-latency"}, {"slo": "shelf-vision/edge-latency"}]),
            "members[1].slo",
        ),
        ({**JOURNEY, "aggregation": "median"}, "aggregation"),
        ({**JOURNEY, "objective": 100}, "objective"),
        ({**JOURNEY, "service": "no-such-service"}, "service"),
        ({**JOURNEY, "window": {"days": 0}}, "window.days"),
        ({k: v for k, v in JOURNEY.items() if k != "members"}, "members"),
    ],
)
def test_bad_input_is_400_with_the_field_path_and_stores_nothing(api_for, catalog, body, path):
    api = api_for("operator")  # the token it makes is audited too
    audits = AuditEvent.objects.count()
    response = api.post(URL, body, format="json")
    assert path in problem_paths(response)
    assert not Composite.objects.exists()
    assert not CompositeMember.objects.exists()
    assert AuditEvent.objects.count() == audits


def test_create_read_update_restore_with_versions_and_audit(api_for, catalog):
    api = api_for("operator")
    created = api.post(URL, {**JOURNEY, "note": "the journey"}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created["ETag"] == '"v1"'
    assert [m.slo.name for m in CompositeMember.objects.filter(composite_id=pk).select_related("slo")] == [
        "edge-latency",
        "edge-availability",
        "cloud-latency",
        "fallback-success",
    ]
    viewer = api_for("viewer")
    assert viewer.get(f"{URL}{pk}/").json()["spec"]["members"][0] == {
        "slo": "shelf-vision/edge-latency",
        "weight": 4.0,
    }
    assert viewer.post(URL, JOURNEY, format="json").status_code == 403

    changed = api.patch(f"{URL}{pk}/", {"aggregation": "least_healthy"}, format="json", HTTP_IF_MATCH='"v1"')
    assert changed.status_code == 200 and changed.json()["version"] == 2
    stale = api.patch(f"{URL}{pk}/", {"objective": 98.0}, format="json", HTTP_IF_MATCH='"v1"')
    assert stale.status_code == 412
    restored = api.post(f"{URL}{pk}/restore/", {"version": 1}, format="json")
    assert restored.json()["version"] == 3 and restored.json()["aggregation"] == "weighted_average"
    versions = viewer.get(f"{URL}{pk}/versions/").json()["results"]
    assert [(v["version"], v["restored_from"]) for v in versions] == [(3, 1), (2, None), (1, None)]
    assert CompositeVersion.objects.filter(composite_id=pk).count() == 3
    actions = list(
        AuditEvent.objects.filter(object_type="slo.composite", object_id=str(pk))
        .order_by("id")
        .values_list("action", "actor_name")
    )
    assert actions == [("create", "otto"), ("update", "otto"), ("update", "otto")]

    bad = api.put(f"{URL}{pk}/", with_members([{"slo": "shelf-vision/edge-latency"}]), format="json")
    assert "members" in problem_paths(bad)
    assert Composite.objects.get(pk=pk).version == 3

    assert api.delete(f"{URL}{pk}/").status_code == 204
    assert viewer.get(f"{URL}{pk}/").status_code == 404
    assert AuditEvent.objects.filter(object_type="slo.composite", action="archive").count() == 1


def test_openslo_export_is_the_v1_composite_form_and_says_what_it_cannot_express(api_for, catalog):
    pk = api_for("operator").post(URL, JOURNEY, format="json").json()["id"]
    response = api_for("viewer").get(f"{URL}{pk}/openslo/")
    assert response.status_code == 200
    text = response.content.decode()
    assert text.startswith("# OpenSLO v1 cannot express: the composite's own objective")
    document = yaml.safe_load(text)
    assert document["kind"] == "SLO" and "indicator" not in document["spec"]
    objectives = document["spec"]["objectives"]
    assert [(o["displayName"], o["compositeWeight"], o["target"]) for o in objectives] == [
        ("Edge answers within 150 ms", 4.0, 0.99),  # the member's display name, else its service/name
        ("shelf-vision/edge-availability", 4.0, 0.995),
        ("shelf-vision/cloud-latency", 1.0, 0.99),
        ("shelf-vision/fallback-success", 1.0, 0.99),
    ]
    assert all("ratioMetric" in o["indicator"]["spec"] for o in objectives)
    extension = yaml.safe_load(document["metadata"]["annotations"]["inference-slo-controlplane/composite"])
    assert extension["objective"] == 99.0 and extension["aggregation"] == "weighted_average"


def test_status_before_and_after_evaluation(api_for, catalog):
    from django.utils import timezone

    from slo.composites.evaluation import composite_evaluate

    pk = api_for("operator").post(URL, JOURNEY, format="json").json()["id"]
    assert api_for("viewer").get(f"{URL}{pk}/status/").status_code == 404
    composite_evaluate(composite_ids=[pk], now=timezone.now())
    document = api_for("viewer").get(f"{URL}{pk}/status/").json()
    # no telemetry at all: no data, never 100%, and every member is listed as without data
    assert document["sli"] is None and document["data_quality"] == "no_data"
    assert len(document["members_without_data"]) == 4
