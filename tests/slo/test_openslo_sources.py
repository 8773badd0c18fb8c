"""OpenSLO files as other tools write them: PromQL counter queries pulled exactly from a REAL
Prometheus, queries without an exact count refused, the list form, DataSources mapped to telemetry
sources, `labels.tier`, and durations and ops kept on export."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import yaml

from controlplane.errors import ValidationFailed
from slo.contract import REQUESTS_TOTAL
from slo.counters import from_epoch_minute
from slo.interop import openslo_export_text, openslo_import
from slo.models import Service, Slo
from slo.models.telemetry import TelemetrySource
from slo.telemetry.pull import telemetry_source_pull
from slo.telemetry.selectors import sli_minutes
from slo.telemetry.sources import telemetry_source_create
from tests.support import prometheus as support
from tests.support.prometheus import LoadedPrometheus, PrometheusServer, expected_sum

prometheus_history = support.prometheus_history
prometheus_server = support.prometheus_server

GOOD = f'sum(rate({REQUESTS_TOTAL}{{service="shelf-vision", tier="edge", outcome="ok"}}[5m]))'
TOTAL = f'sum by (route) (increase({REQUESTS_TOTAL}{{service="shelf-vision", tier="edge", outcome=~"ok|error"}}[5m]))'
QUERY_PATH = "documents[0][2].spec.indicator.spec.ratioMetric.good.metricSource.spec.query"


def openslo_list(
    *,
    url: str = "http://prometheus.example:9090",
    good: str = GOOD,
    total: str = TOTAL,
    tier: Any = ("edge",),
    source_type: str = "Prometheus",
    window: str = "2w",
) -> str:
    """A list-form file (oslo, the OpenSLO SDK): Service, DataSource, SLO."""
    labels = {"team": ["vision", "sre"]}
    if tier is not None:
        labels["tier"] = list(tier) if isinstance(tier, tuple) else tier
    documents = [
        {"apiVersion": "openslo/v1", "kind": "Service", "metadata": {"name": "shelf-vision"}, "spec": {}},
        {
            "apiVersion": "openslo/v1",
            "kind": "DataSource",
            "metadata": {"name": "edge-prom"},
            "spec": {"type": source_type, "connectionDetails": [{"url": url}]},
        },
        {
            "apiVersion": "openslo/v1",
            "kind": "SLO",
            "metadata": {"name": "shelf-answers", "labels": labels},
            "spec": {
                "service": "shelf-vision",
                "indicator": {
                    "metadata": {"name": "shelf-answers-ok"},
                    "spec": {
                        "ratioMetric": {
                            "counter": True,
                            "good": {
                                "metricSource": {"metricSourceRef": "edge-prom", "spec": {"query": good}}
                            },
                            "total": {
                                "metricSource": {"metricSourceRef": "edge-prom", "spec": {"query": total}}
                            },
                        }
                    },
                },
                "timeWindow": [{"duration": window, "isRolling": True}],
                "budgetingMethod": "Occurrences",
                "objectives": [{"displayName": "Answered", "op": "gt", "target": 0.99}],
            },
        },
    ]
    return yaml.safe_dump(documents, sort_keys=False)


def refused(text: str) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as excinfo:
        openslo_import(actor=None, text=text)
    return {
        p["path"] if isinstance(p, dict) else p.path: p["message"] if isinstance(p, dict) else p.message
        for p in excinfo.value.problems
    }


@pytest.mark.prometheus
def test_rate_queries_from_an_openslo_file_are_pulled_exactly(
    db: Any, prometheus_server: PrometheusServer, prometheus_history: LoadedPrometheus
) -> None:
    result = openslo_import(actor=None, text=openslo_list(url=prometheus_server.url))

    assert [d["action"] for d in result["datasources"]] == ["created"]
    slo = Slo.objects.get(name="shelf-answers")
    assert slo.spec["tier"] == "edge" and slo.spec["sli"]["good_query"] == GOOD
    n = prometheus_history.history.minutes
    source = TelemetrySource.objects.get(name="edge-prom")
    assert (source.url, source.tier, source.services) == (prometheus_server.url, "edge", ["shelf-vision"])
    TelemetrySource.objects.filter(pk=source.pk).update(backfill_minutes=n, scrape_lag_s=0)
    start = from_epoch_minute(prometheus_history.history.start_s // 60)
    pulled = telemetry_source_pull(source_id=source.pk, now=start + timedelta(minutes=n))
    assert pulled.ok and pulled.error == ""

    base = {"service": "shelf-vision", "tier": "edge"}
    ok = [
        (REQUESTS_TOTAL, {**base, "route": r, "outcome": "ok"}) for r in ("local", "cache", "private_cloud")
    ]
    good, good_present = expected_sum(prometheus_history.history, ok)
    valid, valid_present = expected_sum(
        prometheus_history.history, [*ok, (REQUESTS_TOTAL, {**base, "route": "local", "outcome": "error"})]
    )
    present = good_present & valid_present
    stored = sli_minutes([slo.pk], start, start + timedelta(minutes=n))
    assert np.flatnonzero(~stored.present[0]).tolist() == np.flatnonzero(~present).tolist()
    assert stored.good[0][present].tolist() == good[present].tolist()
    assert stored.valid[0][present].tolist() == valid[present].tolist()
    sli = stored.good[0][present].sum() / stored.valid[0][present].sum()
    assert abs(sli - good[present].sum() / valid[present].sum()) < 1e-9
    assert 0.5 < sli < 1  # errors were generated: not a trivially perfect ratio


@pytest.mark.parametrize(
    ("good", "expected"),
    [
        (
            'histogram_quantile(0.99, sum by (le) (rate(request_seconds_bucket{job="a"}[5m])))',
            [
                "histogram_quantile gives a latency quantile",
                'use instead: good: sum(rate(request_seconds_bucket{le="<threshold>", job="a"}[5m]))',
            ],
        ),
        (f"{GOOD} / {TOTAL}", ["arithmetic (/) has no exact per-minute count", "use instead: sum(rate("]),
        ("avg_over_time(queue_depth[5m])", ["avg_over_time() gives no exact per-minute count"]),
        ("sum:requests.ok{*}", ["not valid PromQL"]),
    ],
    ids=["histogram_quantile", "arithmetic", "gauge", "not-promql"],
)
def test_a_query_without_an_exact_count_is_refused_with_its_path_and_a_form(
    db: Any, good: str, expected: list[str]
) -> None:
    problems = refused(openslo_list(good=good))

    assert list(problems) == [QUERY_PATH]
    for part in expected:
        assert part in problems[QUERY_PATH]
    assert not Slo.objects.exists() and not Service.objects.exists() and not TelemetrySource.objects.exists()


def test_the_api_refuses_such_a_query_with_400_and_the_field_path(api_for: Any) -> None:
    text = openslo_list(good="sum(rate(a_total[5m])) / sum(rate(b_total[5m]))")
    response = api_for("operator").post("/api/v1/openslo/import/", data=text, content_type="application/yaml")

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["path"] == QUERY_PATH and "use instead: sum(rate(a_total[5m]))" in error["message"]


def test_a_custom_slo_created_directly_is_checked_the_same_way(db: Any) -> None:
    from slo.services import service_create, slo_create

    service_create(
        actor=None, data={"name": "shelf-vision", "service_class": "interactive", "tiers": ["edge"]}
    )
    doc = {
        "name": "answers",
        "service": "shelf-vision",
        "objective": 99,
        "window": {"days": 28},
        "sli": {"kind": "custom", "good_query": GOOD, "total_query": TOTAL},
    }
    assert slo_create(actor=None, data=doc).pk
    with pytest.raises(ValidationFailed) as excinfo:
        slo_create(
            actor=None,
            data={
                **doc,
                "name": "p99",
                "sli": {
                    "kind": "custom",
                    "good_query": "histogram_quantile(0.99, rate(x_bucket[5m]))",
                    "total_query": TOTAL,
                },
            },
        )
    [problem] = excinfo.value.problems
    assert problem["path"].endswith("sli.good_query") and "histogram_quantile" in problem["message"]


def test_a_non_prometheus_source_is_refused_because_it_would_never_have_data(db: Any) -> None:
    problems = refused(openslo_list(source_type="Datadog", good="sum:requests.ok{*}.as_count()"))

    path = "documents[0][2].spec.indicator.spec.ratioMetric.good.metricSource.metricSourceRef"
    assert "'Datadog'" in problems[path] and "never have data" in problems[path]


def test_the_list_form_imports_and_an_existing_telemetry_source_is_matched(db: Any) -> None:
    Service.objects.create(name="shelf-vision", service_class="interactive", tiers=["edge", "public_cloud"])
    telemetry_source_create(
        actor=None, data={"name": "edge-prom", "url": "http://mimir.example/prometheus", "tier": "edge"}
    )

    result = openslo_import(actor=None, text=openslo_list())

    assert [s["name"] for s in result["created"]] == ["shelf-answers"]
    [mapping] = result["datasources"]
    assert (
        mapping["action"] == "matched"
        and "reason" not in mapping
        and mapping["slos"] == ["shelf-vision/shelf-answers"]
    )
    assert TelemetrySource.objects.get().url == "http://mimir.example/prometheus"  # matched, not changed


def test_a_matched_source_that_does_not_serve_the_slo_is_reported(db: Any) -> None:
    Service.objects.create(name="shelf-vision", service_class="interactive", tiers=["edge", "public_cloud"])
    telemetry_source_create(
        actor=None, data={"name": "edge-prom", "url": "http://prom.example", "tier": "public_cloud"}
    )

    [mapping] = openslo_import(actor=None, text=openslo_list())["datasources"]

    assert mapping["action"] == "matched" and "does not serve shelf-vision/shelf-answers" in mapping["reason"]


def test_a_source_without_a_tier_is_not_created_and_says_why(db: Any) -> None:
    [mapping] = openslo_import(actor=None, text=openslo_list(tier=None))["datasources"]

    assert mapping["action"] == "not created" and "labels.tier" in mapping["reason"]
    assert not TelemetrySource.objects.exists()


def test_labels_tier_scopes_the_slo_as_a_string_or_a_list(db: Any) -> None:
    openslo_import(actor=None, text=openslo_list(tier="private_cloud"))
    assert Slo.objects.get().spec["tier"] == "private_cloud"
    assert Service.objects.get().tiers == ["private_cloud"]

    problems = refused(openslo_list(tier=("edge", "public_cloud")))
    assert "one tier" in problems["documents[0][2].metadata.labels.tier"]


def test_durations_ops_lists_references_and_the_tier_come_back_on_export(db: Any) -> None:
    text = openslo_list()
    openslo_import(actor=None, text=text)

    exported = openslo_export_text(slos=list(Slo.objects.all()))
    slo = [d for d in yaml.safe_load_all(exported) if d["kind"] == "SLO"][0]
    original = yaml.safe_load(text)[2]
    assert (
        slo["metadata"]["labels"]
        == original["metadata"]["labels"]
        == {"team": ["vision", "sre"], "tier": ["edge"]}
    )
    assert slo["spec"]["timeWindow"] == [{"duration": "2w", "isRolling": True}]
    assert slo["spec"]["objectives"] == original["spec"]["objectives"]
    assert slo["spec"]["indicator"]["spec"]["ratioMetric"]["good"]["metricSource"] == {
        "metricSourceRef": "edge-prom",
        "type": "Prometheus",
        "spec": {"query": GOOD},
    }
    # and importing the export gives the same SLO back
    before = Slo.objects.get().spec
    again = openslo_import(actor=None, text=exported)
    assert [s["name"] for s in again["updated"]] == ["shelf-answers"] and again["unsupported"] == []
    assert Slo.objects.get().spec == before


@pytest.mark.parametrize(
    ("tier", "labels"),
    [("edge", {}), (None, {"tier": "edge"}), ("edge", {"tier": "public_cloud"})],
    ids=["scoped", "plain-label-that-looks-like-a-tier", "scoped-with-a-plain-label"],
)
def test_the_tier_survives_a_round_trip_whatever_the_labels_say(
    tier: str | None, labels: dict[str, str]
) -> None:
    from slo.openslo import export_openslo, import_openslo
    from slo.spec import SloSpec

    spec = SloSpec.model_validate(
        {
            "name": "answers",
            "service": "shelf-vision",
            "objective": 99,
            "window": {"days": 28},
            "tier": tier,
            "labels": labels,
            "sli": {"kind": "custom", "good_query": GOOD, "total_query": TOTAL},
        }
    )
    result = import_openslo(export_openslo([spec]))

    assert result.problems == [] and result.unsupported == []
    assert result.slos == [spec]


def test_export_writes_the_referenced_sources_as_datasources_that_import_back(db: Any) -> None:
    Service.objects.create(name="shelf-vision", service_class="interactive", tiers=["edge", "public_cloud"])
    source = telemetry_source_create(
        actor=None,
        data={
            "name": "edge-prom",
            "url": "http://mimir.example/prometheus",
            "tier": "edge",
            "auth_kind": "bearer",
            "secret": "s3cret-token",
            "headers": {"X-Scope-OrgID": "team-a"},
        },
    )
    openslo_import(actor=None, text=openslo_list())

    text = openslo_export_text(slos=list(Slo.objects.all()))

    documents = list(yaml.safe_load_all(text))
    [datasource] = [d for d in documents if d["kind"] == "DataSource"]
    assert datasource == {
        "apiVersion": "openslo/v1",
        "kind": "DataSource",
        "metadata": {"name": "edge-prom", "labels": {"tier": "edge"}},
        "spec": {"type": "Prometheus", "connectionDetails": {"url": "http://mimir.example/prometheus"}},
    }
    assert "s3cret-token" not in text and "team-a" not in text  # credentials stay on the source
    # on a control plane without the source, the exported file creates it again, same URL and tier
    from slo.telemetry.sources import telemetry_source_delete

    telemetry_source_delete(actor=None, source_id=source.pk)
    [mapping] = openslo_import(actor=None, text=text)["datasources"]
    assert mapping["action"] == "created", mapping
    again = TelemetrySource.objects.get(name="edge-prom")
    assert (again.url, again.tier) == ("http://mimir.example/prometheus", "edge")
