"""The rule file for stored SLOs: only SLOs whose metrics are in Prometheus get rules."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
import yaml
from django.core.management import call_command

from slo.models import Slo
from slo.models.telemetry import SliFeed, TelemetrySource
from slo.rules_export import PUSH_ONLY_REASON

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_slo(users: dict[str, Any], service: Any) -> Any:
    from slo.services import slo_create

    def build(name: str, tier: str | None = "edge", **overrides: Any) -> Slo:
        doc = {
            "name": name,
            "service": "shelf-vision",
            "sli": {"kind": "availability"},
            "objective": 99.9,
            "window": {"type": "rolling", "days": 30},
            **({"tier": tier} if tier else {}),
            **overrides,
        }
        return slo_create(actor=users["operator"], data=doc)

    return build


def feed(slo: Slo, source: str, mode: str) -> None:
    SliFeed.objects.create(slo=slo, source=source, mode=mode, first_minute=29_000_000, last_minute=29_000_100)


def exported_names(text: str) -> set[str]:
    rules = yaml.safe_load(text)
    return {rule["labels"]["slo_name"] for group in rules["groups"] for rule in group["rules"]}


def test_push_only_slos_are_skipped_with_the_reason(api_for, make_slo):
    pushed = make_slo("pushed")
    feed(pushed, "gateway:1", "push")
    pulled = make_slo("pulled")
    feed(pulled, "gateway:2", "push")
    feed(pulled, "prometheus:1", "pull")
    make_slo("no-feed-yet")  # its gateways expose the contract's metrics: rules are useful
    retired = make_slo("retired-push")
    feed(retired, "gateway:3", "retired")
    make_slo(
        "datadog",
        tier=None,
        labels={"openslo.metric-source.type": "Datadog"},
        sli={"kind": "custom", "bad_query": "errors_total", "total_query": "requests_total"},
    )

    response = api_for("viewer").get("/api/v1/prometheus-rules/", {"service": "shelf-vision"})
    assert response.status_code == 200
    text = response.content.decode()
    assert exported_names(text) == {"pulled", "no-feed-yet", "retired-push"}
    assert response["X-Slos-Skipped"] == "2"
    assert f"#   shelf-vision/pushed (tier edge): {PUSH_ONLY_REASON}\n" in text
    assert "#   shelf-vision/datadog: its metric source is 'Datadog', not Prometheus\n" in text

    single = api_for("viewer").get(f"/api/v1/slos/{pushed.pk}/prometheus-rules/")
    assert single.status_code == 200 and yaml.safe_load(single.content) == {"groups": []}
    assert PUSH_ONLY_REASON in single.content.decode()


def test_a_pushed_slo_that_a_prometheus_source_serves_gets_rules(api_for, make_slo):
    edge = make_slo("edge-pushed")
    feed(edge, "gateway:1", "push")
    whole_service = make_slo("service-pushed", tier=None)
    feed(whole_service, "gateway:1", "push")
    TelemetrySource.objects.create(name="edge-prom", url="http://prometheus.invalid:9090", tier="edge")
    cloud = TelemetrySource.objects.create(
        name="cloud-prom", url="http://prometheus.invalid:9090", tier="public_cloud", services=["other"]
    )

    text = api_for("viewer").get("/api/v1/prometheus-rules/").content.decode()
    # The edge source serves the edge SLO and the tierless one (its service runs on the edge).
    assert exported_names(text) == {"edge-pushed", "service-pushed"}

    TelemetrySource.objects.filter(name="edge-prom").update(enabled=False)
    cloud.services = []
    cloud.save()
    text = api_for("viewer").get("/api/v1/prometheus-rules/").content.decode()
    assert exported_names(text) == {"service-pushed"}


def test_the_command_prints_the_rules_and_says_what_it_skipped(make_slo):
    feed(make_slo("pushed"), "gateway:1", "push")
    make_slo("pulled")
    out, err = StringIO(), StringIO()
    call_command(
        "export_prometheus_rules", "--service", "shelf-vision", "--interval", "30s", stdout=out, stderr=err
    )
    assert exported_names(out.getvalue()) == {"pulled"}
    assert all(group["interval"] == "30s" for group in yaml.safe_load(out.getvalue())["groups"])
    assert err.getvalue() == f"skipped shelf-vision/pushed (tier edge): {PUSH_ONLY_REASON}\n"
