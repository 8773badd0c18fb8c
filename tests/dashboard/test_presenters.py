"""Evidence in words (web.presenters) on plain data: each gate kind, canary verdicts, alerts."""

from __future__ import annotations

import json

from web import presenters


def test_documents_gate_names_each_problem_and_counts_them() -> None:
    ev = {
        "checked": {"routing_policy": {"version": 3, "state": "draft", "errors": 1}},
        "gateways": 4,
        "problems": [{"path": "routing_policy", "message": "version 3 is draft, not approved"}],
        "problem_count": 1,
    }
    out = presenters.gate_evidence("documents", "fail", ev)
    assert out.sentence == "Documents failed: 1 problem(s) found on 4 gateway bundle(s)."
    assert [(r.measured, r.verdict) for r in out.rows][-1] == ("routing_policy", "fail")
    assert json.loads(out.raw_json) == ev


def test_budget_gate_says_state_and_each_slos_remaining_budget() -> None:
    ev = {
        "service": "shelf",
        "change_kind": "feature",
        "state": "frozen",
        "frozen": True,
        "reason": "budget spent",
        "required_extra_approvals": 1,
        "policy": {},
        "policy_source": "default",
        "slos": [{"name": "availability", "remaining": -0.25, "data_quality": "ok"}],
    }
    out = presenters.gate_evidence("error_budget", "fail", ev)
    assert out.sentence.startswith("Error budget gate failed for a feature of shelf: budget state frozen.")
    assert "needs 1 extra approval" in out.sentence
    assert out.rows[0].measured == "budget remaining of availability" and out.rows[0].value == "-25.00%"


def test_paging_gate_names_paging_slos_and_the_hotfix_exception() -> None:
    fail = presenters.gate_evidence(
        "paging", "fail", {"paging_slos": ["latency"], "threshold": "no SLO paging"}
    )
    assert fail.sentence == "Paging gate failed: 1 SLO(s) page (latency)."
    ok = presenters.gate_evidence("paging", "pass", {"paging_slos": [], "threshold": "no SLO paging"})
    assert ok.sentence == "Paging gate passed: no SLO of the service is paging."
    hotfix = presenters.gate_evidence(
        "paging",
        "pass",
        {"paging_slos": ["latency"], "threshold": "x", "note": "a hotfix release may go out while SLOs page"},
    )
    assert "A hotfix release may go out" in hotfix.sentence


def test_data_quality_gate_marks_slos_without_verdict() -> None:
    ev = {
        "slos": [{"name": "a", "data_quality": "ok"}, {"name": "b", "data_quality": "no_data"}],
        "without_verdict": [{"name": "b", "data_quality": "no_data"}],
        "reason": "no verdict for b (no_data)",
    }
    out = presenters.gate_evidence("data_quality", "inconclusive", ev)
    assert out.sentence == "Data quality gate was inconclusive: no verdict for b (no_data)."
    assert [(r.value, r.verdict) for r in out.rows] == [("ok", "pass"), ("no data", "no verdict")]


def test_simulation_gate_compares_predicted_burn_with_its_limit() -> None:
    ev = {
        "baseline_version": 1,
        "candidate_version": 2,
        "slo": "latency",
        "candidate_budget_burn": 1.7,
        "baseline_budget_burn": 0.4,
        "p95_shift_ms": 12.5,
        "bad_ratio_shift": 0.002,
        "threshold": "candidate budget burn <= 1.0",
        "traffic": "recorded edge traffic",
        "contexts": {"n": 500},
    }
    out = presenters.gate_evidence("simulation", "fail", ev)
    assert out.sentence == (
        "Simulation failed: predicted budget burn 1.70× against a limit of 1.00×, "
        "replaying 500 requests drawn from recorded edge traffic."
    )
    assert (out.rows[0].value, out.rows[0].against, out.rows[0].verdict) == ("1.70×", "at most 1.00×", "fail")
    missing = presenters.gate_evidence(
        "simulation", "not_evaluated", {"reason": "the release changes no routing policy"}
    )
    assert missing.sentence == "Simulation was not evaluated: the release changes no routing policy."


def _canary(verdict: str, checks: list[dict]) -> dict:
    return {
        "verdict": verdict,
        "checks": checks,
        "window": {"start": "2026-12-06T03:00:00+00:00", "end": "2026-12-06T03:05:00+00:00"},
        "canary_gateways": [1],
        "baseline_gateways": [2, 3],
    }


def test_canary_pass_fail_and_inconclusive_measurements() -> None:
    passed = presenters.gate_evidence(
        "canary",
        "pass",
        _canary(
            "pass",
            [
                {"name": "canary_traffic", "outcome": "pass", "value": 500.0, "threshold": 100, "detail": ""},
                {
                    "name": "burn_rate:availability",
                    "outcome": "pass",
                    "value": 0.5,
                    "threshold": 10.0,
                    "detail": "",
                },
            ],
        ),
    )
    assert passed.sentence == (
        "Canary measurement over 03:00–03:05 UTC (1 canary against 2 baseline gateway(s)) "
        "passed: every check within its limit."
    )
    assert (passed.rows[1].measured, passed.rows[1].value, passed.rows[1].against) == (
        "burn rate of availability",
        "0.50×",
        "at most 10.00×",
    )
    failed = presenters.gate_evidence(
        "canary",
        "fail",
        _canary(
            "fail",
            [
                {
                    "name": "p95_latency",
                    "outcome": "fail",
                    "value": 250.0,
                    "threshold": 110.0,
                    "detail": "baseline p95 100.0 ms",
                },
                {
                    "name": "error_ratio",
                    "outcome": "pass",
                    "value": 0.001,
                    "threshold": 0.002,
                    "detail": "baseline 0.1000%",
                },
            ],
        ),
    )
    assert failed.sentence.endswith("failed: canary p95 latency (ms) above the limit.")
    assert failed.rows[0].against == "at most 110.0 ms (baseline p95 100.0 ms)"
    assert failed.rows[1].value == "0.1000%"
    unsure = presenters.gate_evidence(
        "canary",
        "inconclusive",
        _canary(
            "inconclusive",
            [
                {
                    "name": "canary_traffic",
                    "outcome": "inconclusive",
                    "value": 12.0,
                    "threshold": 100,
                    "detail": "too little canary traffic to judge",
                }
            ],
        ),
    )
    assert unsure.sentence.endswith("was inconclusive: no verdict on canary traffic (events).")
    assert unsure.rows[0].against == "at least 100 (too little canary traffic to judge)"


def test_burn_rate_alert_evidence_names_windows_rates_and_threshold() -> None:
    ev = {
        "tiers": [
            {
                "severity": "page",
                "long_window": "1h",
                "short_window": "5m",
                "long_burn_rate": 20.0,
                "short_burn_rate": 18.5,
                "burn_rate_threshold": 14.4,
                "status": "firing",
            },
            {
                "severity": "ticket",
                "long_window": "3d",
                "short_window": "6h",
                "long_burn_rate": 2.0,
                "short_burn_rate": 2.0,
                "burn_rate_threshold": 1.0,
                "status": "firing",
            },
        ]
    }
    out = presenters.alert_evidence(kind="burn_rate", severity="page", state="firing", evidence=ev)
    assert out.sentence == "The page alert fired: 1h and 5m burned 20.00× and 18.50× against 14.40×."
    assert [r.measured for r in out.rows] == ["burn rate over 1h", "burn rate over 5m"]
    assert presenters.alert_name(slo_name="availability", severity="page") == "availability page (burn rate)"
    cache = presenters.alert_evidence(
        kind="stale_hits",
        severity="ticket",
        state="firing",
        evidence={"stale_rate": 0.2, "max_stale_rate": 0.05},
    )
    assert cache.sentence == "The ticket stale-hit alert is firing: stale rate 20.0% against at most 5.0%."


def test_rollback_evidence_lists_the_alerts_that_caused_it() -> None:
    ev = {
        "alerts": [
            {
                "labels": {"alertname": "SloBurn", "severity": "page"},
                "status": "firing",
                "startsAt": "2026-12-06T03:00:00Z",
                "why": "began during the rollout",
            }
        ],
        "receiver": "cp",
    }
    out = presenters.rollback_evidence(
        trigger="alertmanager", reason="Alertmanager: SloBurn firing", evidence=ev
    )
    assert out.sentence == "Rolled back by alertmanager: Alertmanager: SloBurn firing"
    assert (
        out.rows[0].measured == "alert SloBurn (page)" and out.rows[0].verdict == "began during the rollout"
    )
    assert presenters.stage_label("canary:0") == "canary, wave 1"
