"""Prometheus rules export: structure, and the real promtool (check rules, and rule unit tests).

The outage scenarios are promtool unit tests in tests/slo/rules/*.yml; their expected alerts name
the labels, and the annotations are filled in from the rule file under test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from slo import contract
from slo.rules import (
    SkippedSlo,
    SliQueries,
    prometheus_rules,
    rule_file,
    rules_yaml,
    sli_queries_from_spec,
)
from slo.spec import SloSpec
from tests.support.prometheus import PROMTOOL_BIN

SCENARIOS_DIR = Path(__file__).parent / "rules"

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
    """The promtool binary; missing fails on CI and skips on a developer machine."""
    path = shutil.which("promtool") or (PROMTOOL_BIN if os.path.exists(PROMTOOL_BIN) else None)
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


def test_import_bookkeeping_labels_are_not_prometheus_labels():
    imported = LATENCY.model_copy(
        update={
            "labels": {
                "team": "vision",
                "openslo.name": "Fast answers!",
                "openslo.objective.display-name": "Answers within 200 ms",
                "openslo.indicator.description": "Share of answers, with a long free-text description",
                "openslo.annotation.runbook": "https://runbooks.example/fast",
            }
        }
    )
    groups = prometheus_rules([(imported, LATENCY_QUERIES)])["groups"]
    for group in groups:
        for rule in group["rules"]:
            assert not [name for name in rule["labels"] if name.startswith("openslo")], rule["labels"]
            assert rule["labels"]["team"] == "vision"


def test_it_wraps_selectors_in_rates_and_counts_a_missing_side_as_zero():
    groups = prometheus_rules([(AVAILABILITY, AVAILABILITY_QUERIES), (LATENCY, LATENCY_QUERIES)])["groups"]
    bad_5m, good_5m = rules_named(groups, "slo:sli_error:ratio_rate5m")
    bad = 'sum(rate(inference_requests_total{service="shelf-vision",route="failed"}[5m]))'
    total = 'sum(rate(inference_requests_total{service="shelf-vision"}[5m]))'
    # No failure yet means no bad series: zero errors while the total exists.
    assert bad_5m["expr"] == f"({bad} or {total} * 0)\n/\n{total}"
    good = 'sum(rate(inference_request_duration_seconds_bucket{service="shelf-vision",tier="edge",le="0.2"}[5m]))'
    latency_total = (
        'sum(rate(inference_request_duration_seconds_count{service="shelf-vision",tier="edge"}[5m]))'
    )
    # Nothing succeeded since a restart means no good series: every event is an error.
    assert f"({good} or {latency_total} * 0)" in good_5m["expr"]
    period, _ = rules_named(groups, "slo:sli_error:ratio_rate30d") + [None]
    assert "sum_over_time(slo:sli_error_events:rate5m{" in period["expr"]


def test_every_tier_is_its_own_alert_with_a_for_and_its_windows():
    groups = prometheus_rules([(LATENCY, LATENCY_QUERIES), (AVAILABILITY, AVAILABILITY_QUERIES)])["groups"]
    burn = rules_named(groups, "SLOErrorBudgetBurnPage") + rules_named(groups, "SLOErrorBudgetBurnTicket")
    windows = sorted(
        (r["labels"]["slo_name"], r["labels"]["long"], r["labels"]["short"], r["for"]) for r in burn
    )
    # `for:` is half the short window, as Pyrra's.
    expected = [("1d", "2h", "1h"), ("1h", "5m", "2m"), ("3d", "6h", "3h"), ("6h", "30m", "15m")]
    assert windows == [(name, *w) for name in ("fast-answers", "requests-ok") for w in expected]
    for rule in burn:
        assert rule["labels"]["severity"] == ("page" if rule["alert"].endswith("Page") else "ticket")


def test_alert_thresholds_scale_with_the_window_and_never_go_below_1x():
    week = SloSpec.model_validate(
        {
            **AVAILABILITY.model_dump(),
            "name": "weekly",
            "objective": 99.0,
            "window": {"type": "rolling", "days": 7},
        }
    )
    groups = prometheus_rules(
        [(LATENCY, LATENCY_QUERIES), (AVAILABILITY, AVAILABILITY_QUERIES), (week, AVAILABILITY_QUERIES)]
    )["groups"]

    def bounds(name: str) -> dict[str, str]:
        out = {}
        for rule in rules_named(groups, "SLOErrorBudgetBurnPage") + rules_named(
            groups, "SLOErrorBudgetBurnTicket"
        ):
            if rule["labels"]["slo_name"] == name:
                (bound,) = set(re.findall(r"> (\([\d.e-]+ \* [\d.e-]+\))", rule["expr"]))
                out[rule["labels"]["long"]] = bound
        return out

    # 28 days: the 3-day ticket scales to 0.933x and is raised to 1x.
    assert bounds("fast-answers") == {
        "1h": "(13.44 * 0.005)",
        "6h": "(5.6 * 0.005)",
        "1d": "(2.8 * 0.005)",
        "3d": "(1 * 0.005)",
    }
    assert bounds("requests-ok") == {
        "1h": "(14.4 * 0.001)",
        "6h": "(6 * 0.001)",
        "1d": "(3 * 0.001)",
        "3d": "(1 * 0.001)",
    }
    # 7 days would ticket at 0.7x and 0.233x.
    assert bounds("weekly") == {
        "1h": "(3.36 * 0.01)",
        "6h": "(1.4 * 0.01)",
        "1d": "(1 * 0.01)",
        "3d": "(1 * 0.01)",
    }
    (raised,) = [
        r
        for r in rules_named(groups, "SLOErrorBudgetBurnTicket")
        if r["labels"]["slo_name"] == "weekly" and r["labels"]["long"] == "3d"
    ]
    assert raised["annotations"]["description"] == (
        "Error ratio above 1% over both 3d and 6h: 1x burn (scaled to the SLO window 0.2333x, raised to 1x: "
        "no alert below budget-neutral burn). SLO 99% over 7d."
    )
    # min_valid_events 100 gates the 28-day SLO's tiers on traffic.
    page_28d = [
        r for r in rules_named(groups, "SLOErrorBudgetBurnPage") if r["labels"]["slo_name"] == "fast-answers"
    ]
    page_30d = [
        r for r in rules_named(groups, "SLOErrorBudgetBurnPage") if r["labels"]["slo_name"] == "requests-ok"
    ]
    assert all(">= 100" in r["expr"] for r in page_28d) and not any(">=" in r["expr"] for r in page_30d)


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
    (page,) = rules_named(groups, "SLOErrorBudgetBurnPage")
    assert "(2.1 * 0.01)" in page["expr"] and page["for"] == "10m"
    # Absent counters page after 2.1% of 4 hours (5.04 -> 6 minutes) plus the tier's 10 minutes.
    (absent,) = rules_named(groups, "SLOTelemetryAbsent")
    assert absent["for"] == "16m" and absent["labels"]["severity"] == "page"
    assert absent["expr"] == "absent(embedding_lookups_total)"


def test_an_slo_without_page_tiers_reports_absent_counters_as_a_ticket():
    tickets_only = CUSTOM_TIERS.model_copy(
        update={
            "alert_tiers": [
                t.model_copy(update={"severity": "ticket"}) for t in CUSTOM_TIERS.alert_tiers or []
            ]
        }
    )
    (absent,) = rules_named(
        prometheus_rules([(tickets_only, FRESHNESS_QUERIES)])["groups"], "SLOTelemetryAbsent"
    )
    assert absent["labels"]["severity"] == "ticket"


def test_slos_whose_metrics_are_not_in_prometheus_are_skipped_with_the_reason():
    datadog = CUSTOM_MONTH.model_copy(
        update={"name": "from-datadog", "labels": {"openslo.metric-source.type": "Datadog"}}
    )
    pushed = SkippedSlo("shelf-vision", "pushed-only", "edge", "fed only by gateway pushes")
    rules = rule_file([(AVAILABILITY, AVAILABILITY_QUERIES), (datadog, None)], skipped=[pushed])
    assert {r["labels"]["slo_name"] for g in rules.groups for r in g["rules"]} == {"requests-ok"}
    assert [(s.name, s.reason) for s in rules.skipped] == [
        ("pushed-only", "fed only by gateway pushes"),
        ("from-datadog", "its metric source is 'Datadog', not Prometheus"),
    ]
    text = rules.yaml()
    assert text.startswith("# Prometheus rules for 1 SLO, from the SLO control plane.\n")
    assert "#   shelf-vision/pushed-only (tier edge): fed only by gateway pushes\n" in text
    assert "#   checkout-llm/from-datadog: its metric source is 'Datadog', not Prometheus\n" in text
    assert yaml.safe_load(text) == rules.as_dict()
    # A Prometheus source named in any spelling is Prometheus.
    prom = datadog.model_copy(update={"labels": {"openslo.metric-source.type": "prometheus"}})
    assert rule_file([(prom, None)]).skipped == []


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
    assert text.startswith("# Prometheus rules for 4 SLOs, from the SLO control plane.\n")


def test_promtool_accepts_the_rules(tmp_path: Path):
    tool = promtool()
    path = tmp_path / "slo-rules.yml"
    path.write_text(rules_yaml(ALL, interval="30s"))
    done = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


# ---------------------------------------------------------------- outage scenarios (promtool test rules)

# The scenarios' SLOs: the contract's availability SLI (good = outcome ok), and a custom SLI
# counted by its bad series. The bookkeeping label must not reach any alert.
SCENARIO_AVAILABILITY = SloSpec.model_validate(
    {
        "name": "requests-ok",
        "service": "shelf-vision",
        "tier": "edge",
        "sli": {"kind": "availability"},
        "objective": 99.9,
        "window": {"type": "rolling", "days": 30},
        "labels": {"openslo.objective.display-name": "Requests answered"},
    }
)


def scenario_rules() -> str:
    queries = contract.sli_queries(SCENARIO_AVAILABILITY)
    return rules_yaml(
        [(SCENARIO_AVAILABILITY, SliQueries(total=queries.total, good=queries.good)), (CUSTOM_MONTH, None)]
    )


def with_annotations(unit_tests: dict[str, Any], rules: dict[str, Any]) -> dict[str, Any]:
    """Fill each expected alert's annotations from the one rule of that name whose labels it has."""
    all_rules = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    for test in unit_tests["tests"]:
        for case in test.get("alert_rule_test", []):
            for alert in case["exp_alerts"]:
                labels = alert["exp_labels"]
                (rule,) = [
                    r
                    for r in all_rules
                    if r["alert"] == case["alertname"] and r["labels"].items() <= labels.items()
                ]
                alert["exp_annotations"] = rule["annotations"]
    return unit_tests


def run_scenario(tmp_path: Path, scenario: str, rules_text: str) -> subprocess.CompletedProcess[str]:
    tool = promtool()
    (tmp_path / "rules.yml").write_text(rules_text)
    unit_tests = yaml.safe_load((SCENARIOS_DIR / f"{scenario}.yml").read_text())
    tests_path = tmp_path / f"{scenario}.yml"
    tests_path.write_text(yaml.safe_dump(with_annotations(unit_tests, yaml.safe_load(rules_text))))
    return subprocess.run(
        [tool, "test", "rules", tests_path.name], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )


SCENARIOS = ["total_outage", "gateway_restart", "partial_outage", "recovery", "telemetry_absent"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_promtool_scenario(tmp_path: Path, scenario: str):
    done = run_scenario(tmp_path, scenario, scenario_rules())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


@pytest.mark.parametrize("scenario", ["total_outage", "gateway_restart"])
def test_the_outage_scenarios_fail_when_a_missing_good_series_is_not_counted_as_zero(
    tmp_path: Path, scenario
):
    """The scenarios can fail: with `or <total> * 0` removed they catch the silent outage."""
    silent = re.sub(r" or sum\(rate\([^\[]+\[\w+\]\)\) \* 0", "", scenario_rules())
    assert " * 0)" not in silent
    done = run_scenario(tmp_path, scenario, silent)
    assert done.returncode != 0
    assert "SLOErrorBudgetBurnPage" in done.stdout + done.stderr
