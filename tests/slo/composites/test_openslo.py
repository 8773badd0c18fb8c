"""OpenSLO v1's composite form: imported as a composite SLO, exported back, round trip of our own."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from slo.composites.demo import JOURNEY
from slo.demo import seed_demo_catalog
from slo.models import Slo
from slo.models.composites import Composite, CompositeMember
from slo.openslo import import_openslo
from slo.openslo.check import check_text

FIXTURE = (
    Path(__file__).resolve().parents[2] / "fixtures" / "openslo" / "composites" / "checkout-journey.yaml"
)
IMPORT = "/api/v1/openslo/import/"


def test_a_foreign_composite_becomes_member_slos_and_a_weighted_composite():
    result = import_openslo(FIXTURE.read_text())
    assert result.problems == []
    assert [(s.service, s.name, s.objective) for s in result.slos] == [
        ("checkout", "checkout-journey-cart-availability", 99.9),
        ("checkout", "checkout-journey-payment-availability", 99.0),
    ]
    (composite,) = result.composites
    assert composite["members"] == [
        {"slo": "checkout/checkout-journey-cart-availability", "weight": 3.0},
        {"slo": "checkout/checkout-journey-payment-availability", "weight": 1.0},
    ]
    # v1 has no composite objective: the weights' average of the targets, and the import says so
    assert composite["objective"] == 99.675 == pytest.approx((99.9 * 3 + 99.0) / 4)
    assert composite["aggregation"] == "weighted_average"
    assert composite["window"] == {"type": "rolling", "days": 28}
    assert any("no composite objective" in p.message for p in result.unsupported)
    # exported back (members' indicators inline), nothing of the file is lost silently
    check = check_text(FIXTURE.read_text())
    assert check.status == "imported", check.details


def test_bad_composite_weights_are_refused_with_their_path():
    text = FIXTURE.read_text().replace("compositeWeight: 1", "compositeWeight: 0")
    result = import_openslo(text)
    assert "documents[0].spec.objectives[1].compositeWeight" in [p.path for p in result.problems]
    assert result.composites == []


@pytest.mark.django_db
def test_import_through_the_api_creates_then_leaves_unchanged(api_for):
    api = api_for("operator")
    first = api.post(IMPORT, FIXTURE.read_text(), content_type="application/yaml")
    assert first.status_code == 201, first.content
    assert [c["name"] for c in first.json()["composites"]["created"]] == ["checkout-journey"]
    composite = Composite.objects.get(name="checkout-journey")
    assert CompositeMember.objects.filter(composite=composite).count() == 2
    again = api.post(IMPORT, FIXTURE.read_text(), content_type="application/yaml")
    assert again.json()["composites"]["updated"][0]["version"] == 1  # nothing changed: no new version


@pytest.mark.django_db
def test_our_export_round_trips_without_touching_the_member_slos(api_for, users):
    seed_demo_catalog(actor=users["operator"])
    api = api_for("operator")
    pk = api.post("/api/v1/composites/", {**JOURNEY, "aggregation": "least_healthy"}, format="json").json()[
        "id"
    ]
    text = api.get(f"/api/v1/composites/{pk}/openslo/").content.decode()
    member_versions = dict(Slo.objects.values_list("name", "version"))

    result = api.post(IMPORT, text, content_type="application/yaml").json()
    assert result["created"] == [] and result["updated"] == []  # member SLOs are referenced, not re-imported
    assert result["composites"]["updated"] == [
        {"id": pk, "service": "shelf-vision", "name": "shelf-vision-journey", "version": 1}
    ]
    assert dict(Slo.objects.values_list("name", "version")) == member_versions
    assert any("is referenced, not re-imported" in w["message"] for w in result["unsupported"])
    assert Composite.objects.get(pk=pk).aggregation == "least_healthy"

    # a referenced member that does not exist: 400 at the member, nothing stored
    missing = text.replace("shelf-vision/edge-latency", "shelf-vision/gone")
    before = Composite.objects.get(pk=pk).version
    refused = api.post(IMPORT, missing, content_type="application/yaml")
    assert refused.status_code == 400
    assert "composites[0].members[0].slo" in [p["path"] for p in refused.json()["errors"]]
    assert Composite.objects.get(pk=pk).version == before
    assert yaml.safe_load(text.split("\n", 1)[1])["kind"] == "SLO"


def test_slos_as_code_refuses_a_composite_rather_than_applying_half_of_it():
    from controlplane.errors import ValidationFailed
    from slo.apply import desired_state

    with pytest.raises(ValidationFailed) as refused:
        desired_state([("journey.yaml", FIXTURE.read_text())])
    (problem,) = refused.value.problems
    assert problem["path"] == "journey.yaml: checkout/checkout-journey"
    assert "not applied as code" in problem["message"]
