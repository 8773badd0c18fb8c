"""Prometheus rules export: structure, and the real promtool (check rules, and rule unit tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from slo.rules import SliQueries, prometheus_rules, rules_yaml, sli_queries_from_spec
from slo.spec import SloSpec

LATENCY = SloSpec.model_validate(
    {
        "name": "fast-answers",
        "service": "shelf-vision",
        "tier": "edge",
        "sli": {"kind": "latency", "threshold_ms": 200},
        "objective": 99.5,
        "window": {"type": "rolling", "days": 28},
        "min_valid_events": 100,
        "labels": {"team.owner": "vision", "slo_name": "ignored"},
    }
)
LATENCY_QUERIES = SliQueries(
    total='inference_request_duration_seconds_count{service="shelf-vision",tier="edge"}',
    good='inference_request_duration_seconds_bucket{service="shelf-vision",tier="edge",le="0.2"}',
)
AVAILABILITY = SloSpec.model_validate(
    {
        "name": "requests-ok",
        "service": "shelf-vision",
        "sli": {"kind": "availability"},
        "objective": 99.9,
        "window": {"type": "rolling", "days": 30},
    }
)
AVAILABILITY_QUERIES = SliQueries(
    total='inference_requests_total{service="shelf-vision"}',
    bad='inference_requests_total{service="shelf-vision",route="failed"}',
)
CUSTOM_MONTH = SloSpec.model_validate(
    {
        "name": "http-ok",
        "service": "checkout-llm",
        "sli": {
            "kind": "custom",
            "bad_query": 'http_requests_total{job="llm",code=~"5.."}',
            "total_query": 'http_requests_total{job="llm"}',
        },
        "objective": 99.9,
        "window": {"type": "calendar", "unit": "month", "timezone": "Europe/Berlin"},
    }
)
CUSTOM_TIERS = SloSpec.model_validate(
    {
        "name": "fresh-embeddings",
        "service": "search",
        "sli": {"kind": "freshness", "max_age_s": 600},
        "objective": 99.0,
        "window": {"type": "rolling", "days": 7},
        "alert_tiers": [
            {"severity": "page", "budget_percent": 5, "long_window_s": 4 * 3600, "short_window_s": 20 * 60},
        ],
    }
)
FRESHNESS_QUERIES = SliQueries(total="embedding_lookups_total", good='embedding_lookups_total{stale="false"}')

ALL = [
    (LATENCY, LATENCY_QUERIES),
    (AVAILABILITY, AVAILABILITY_QUERIES),
    (CUSTOM_MONTH, None),
    (CUSTOM_TIERS, FRESHNESS_QUERIES),
]


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not found (Debian package `prometheus`, scripts/install-prometheus.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def rules_named(groups: list[dict], name: str) -> list[dict]:
    return [
        rule for group in groups for rule in group["rules"] if rule.get("record", rule.get("alert")) == name
    ]


def test_it_records_every_window_and_the_period():
    groups = prometheus_rules([(LATENCY, LATENCY_QUERIES)])["groups"]
    assert [g["name"] for g in groups] == [
        "slo-sli-recordings-shelf-vision-fast-answers-edge",
        "slo-meta-recordings-shelf-vision-fast-answers-edge",
        "slo-alerts-shelf-vision-fast-answers-edge",
    ]
    records = [r["record"] for r in groups[0]["rules"]]
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "28d"):
        assert f"slo:sli_error:ratio_rate{window}" in records
    meta = [r["record"] for r in groups[1]["rules"]]
    for name in ("slo:objective:ratio", "slo:error_budget:ratio", "slo:period_error_budget_remaining:ratio"):
        assert name in meta


def test_it_labels_every_rule_and_keeps_our_labels():
    groups = prometheus_rules([(LATENCY, LATENCY_QUERIES)])["groups"]
    for group in groups:
        for rule in group["rules"]:
            labels = rule["labels"]
            assert labels["slo_service"] == "shelf-vision"
            assert labels["slo_name"] == "fast-answers"  # the spec's "slo_name" label cannot override it
            assert labels["slo_tier"] == "edge"
            assert labels["team_owner"] == "vision"
    (rate_1h,) = rules_named(groups, "slo:sli_error:ratio_rate1h")
    assert rate_1h["labels"]["slo_window"] == "1h"


def test_it_wraps_selectors_in_rates():
    groups = prometheus_rules([(AVAILABILITY, AVAILABILITY_QUERIES)])["groups"]
    (rate_5m,) = rules_named(groups, "slo:sli_error:ratio_rate5m")
    assert 'sum(rate(inference_requests_total{service="shelf-vision",route="failed"}[5m]))' in rate_5m["expr"]
    (period,) = rules_named(groups, "slo:sli_error:ratio_rate30d")
    assert "sum_over_time(slo:sli_error_events:rate5m{" in period["expr"]


def test_alert_thresholds_scale_with_the_window():
    groups = prometheus_rules([(LATENCY, LATENCY_QUERIES), (AVAILABILITY, AVAILABILITY_QUERIES)])["groups"]
    page_28d, page_30d = rules_named(groups, "SLOErrorBudgetBurnPage")
    assert "(13.44 * 0.005)" in page_28d["expr"] and "(5.6 * 0.005)" in page_28d["expr"]
    assert "(14.4 * 0.001)" in page_30d["expr"] and "(6 * 0.001)" in page_30d["expr"]
    assert page_30d["labels"]["severity"] == "page"
    _, ticket_30d = rules_named(groups, "SLOErrorBudgetBurnTicket")
    assert "(3 * 0.001)" in ticket_30d["expr"] and "(1 * 0.001)" in ticket_30d["expr"]
    # min_valid_events 100 gates the 28-day SLO's tiers on traffic.
    assert ">= 100" in page_28d["expr"] and ">=" not in page_30d["expr"]


def test_calendar_months_use_a_nominal_30_day_window():
    groups = prometheus_rules([(CUSTOM_MONTH, None)])["groups"]
    assert rules_named(groups, "slo:sli_error:ratio_rate30d")
    assert "14.4 * 0.001" in rules_named(groups, "SLOErrorBudgetBurnPage")[0]["expr"]


def test_custom_tiers_add_their_windows():
    groups = prometheus_rules([(CUSTOM_TIERS, FRESHNESS_QUERIES)])["groups"]
    assert rules_named(groups, "slo:sli_error:ratio_rate4h")
    assert rules_named(groups, "slo:sli_error:ratio_rate20m")
    assert rules_named(groups, "SLOErrorBudgetBurnTicket") == []
    # 5% of a 7-day budget in 4 hours: 0.05 x 168 / 4 = 2.1
    assert "(2.1 * 0.01)" in rules_named(groups, "SLOErrorBudgetBurnPage")[0]["expr"]


def test_queries_come_from_custom_specs_only():
    assert sli_queries_from_spec(CUSTOM_MONTH) == SliQueries(
        total='http_requests_total{job="llm"}', bad='http_requests_total{job="llm",code=~"5.."}'
    )
    assert sli_queries_from_spec(AVAILABILITY) is None
    with pytest.raises(ValueError, match="no SLI queries"):
        prometheus_rules([(AVAILABILITY, None)])


def test_sli_queries_refuse_ambiguous_or_ranged_selectors():
    with pytest.raises(ValueError, match="exactly one"):
        SliQueries(total="t", good="g", bad="b")
    with pytest.raises(ValueError, match="exactly one"):
        SliQueries(total="t")
    with pytest.raises(ValueError, match="range"):
        SliQueries(total="t[5m]", bad="b")


def test_it_refuses_duplicate_slos():
    with pytest.raises(ValueError, match="twice"):
        prometheus_rules([(AVAILABILITY, AVAILABILITY_QUERIES), (AVAILABILITY, AVAILABILITY_QUERIES)])


def test_yaml_round_trips():
    text = rules_yaml(ALL)
    assert yaml.safe_load(text) == prometheus_rules(ALL)
    assert "&id" not in text  # no anchors


def test_promtool_accepts_the_rules(tmp_path: Path):
    tool = promtool()
    path = tmp_path / "slo-rules.yml"
    path.write_text(rules_yaml(ALL, interval="30s"))
    done = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_promtool_fires_the_page_and_the_no_data_alert(tmp_path: Path):
    """The PromQL does what it claims: 10% errors page; a silent SLO raises SLOTelemetryMissing."""
    tool = promtool()
    silent = SloSpec.model_validate(
        {
            "name": "silent",
            "service": "checkout-llm",
            "sli": {"kind": "custom", "bad_query": "never_errors_total", "total_query": "never_total"},
            "objective": 99.0,
            "window": {"type": "rolling", "days": 28},
        }
    )
    (tmp_path / "rules.yml").write_text(rules_yaml([(CUSTOM_MONTH, None), (silent, None)]))
    unit_tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # 1000 requests a minute, 100 of them 5xx: error ratio 10%, burn 100.
                    {"series": 'http_requests_total{job="llm",code="500"}', "values": "0+100x180"},
                    {"series": 'http_requests_total{job="llm",code="200"}', "values": "0+900x180"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "60m",
                        "alertname": "SLOErrorBudgetBurnPage",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "page",
                                    "slo_service": "checkout-llm",
                                    "slo_name": "http-ok",
                                    "slo_tier": "all",
                                },
                                "exp_annotations": {
                                    "summary": "checkout-llm/http-ok is burning its error budget too fast",
                                    "description": "Error ratio 10% over the long window. 14.4x over 1h and 5m "
                                    "(2% of the budget); 6x over 6h and 30m (5% of the budget). SLO 99.9% over 30d.",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "60m",
                        "alertname": "SLOTelemetryMissing",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "ticket",
                                    "slo_service": "checkout-llm",
                                    "slo_name": "silent",
                                    "slo_tier": "all",
                                },
                                "exp_annotations": {
                                    "summary": "checkout-llm/silent has no valid events for an hour",
                                    "description": "Burn-rate alerts cannot fire without data; check the telemetry source.",
                                },
                            }
                        ],
                    },
                ],
                "promql_expr_test": [
                    {
                        "expr": 'round(slo:period_error_budget_remaining:ratio{slo_name="http-ok"}, 0.001)',
                        "eval_time": "60m",
                        # 10% errors against a 0.1% budget: 1 - 100 = -99.
                        "exp_samples": [
                            {
                                "labels": '{slo_service="checkout-llm",slo_name="http-ok",slo_tier="all",slo_window="30d"}',
                                "value": -99,
                            }
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(unit_tests, sort_keys=False))
    done = subprocess.run(
        [tool, "test", "rules", "tests.yml"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
