"""Error-budget policy states and the release-facing selector."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from slo.budget import services
from slo.budget.evaluation import slo_evaluate
from slo.budget.policy import PolicyRules, SloBudget, change_allowed, service_state
from slo.budget.selectors import release_budget_check, service_budget_status
from tests.slo.budget.conftest import NOW, load_minutes


@pytest.mark.parametrize(
    ("remaining", "state", "extra", "frozen"),
    [
        ([0.9, 0.5], "ok", 0, False),
        ([0.9, 0.2], "low", 1, False),
        ([0.9, 0.0], "exhausted", 0, True),
        ([0.2, -0.5], "exhausted", 0, True),
        ([0.9, None], "unknown", 1, False),
        ([], "unknown", 1, False),
    ],
)
def test_service_state_is_the_worst_slo(remaining, state, extra, frozen):
    slos = [SloBudget(f"s{i}", r, "ok" if r is not None else "no_data") for i, r in enumerate(remaining)]
    verdict = service_state(slos, PolicyRules())
    assert (verdict.state, verdict.required_extra_approvals, verdict.frozen) == (state, extra, frozen)


def test_a_freeze_lets_only_rollbacks_and_hotfixes_through():
    verdict = service_state([SloBudget("s", -0.1, "ok")], PolicyRules())
    assert change_allowed(verdict, "normal")[0] is False
    assert change_allowed(verdict, "rollback")[0] is True
    assert change_allowed(verdict, "hotfix")[0] is True
    strict = service_state([SloBudget("s", None, "no_data")], PolicyRules(unknown_blocks=True))
    assert strict.frozen and change_allowed(strict, "normal")[0] is False


@pytest.mark.django_db
def test_service_budget_status_reads_evaluated_slos_under_the_service_policy(make_slo, users, settings):
    healthy, burnt = make_slo(), make_slo()
    start = NOW - timedelta(hours=3)
    ones = np.ones(180, dtype=bool)
    load_minutes(healthy, start, np.full(180, 1000.0), np.full(180, 1000.0), ones)
    # 0.85% errors on a 1% budget: 15% of the budget left, "low" under the default 25% threshold.
    load_minutes(burnt, start, np.full(180, 991.5), np.full(180, 1000.0), ones)
    slo_evaluate(slo_ids=[healthy.pk, burnt.pk], now=NOW)

    status = service_budget_status(service_name="shelf-vision", now=NOW)
    assert status["state"] == "low" and status["required_extra_approvals"] == 1
    assert status["policy_source"] == "built-in"
    by_name = {s["name"]: s for s in status["slos"]}
    assert by_name[burnt.name]["remaining"] == pytest.approx(0.15)

    services.budget_policy_save(
        actor=users["admin"],
        data={
            "service": "shelf-vision",
            "low_remaining_ratio": 0.5,
            "exhausted_remaining_ratio": 0.2,
            "low_extra_approvals": 2,
        },
    )
    status = service_budget_status(service_name="shelf-vision", now=NOW)
    assert (status["state"], status["frozen"], status["policy_source"]) == ("exhausted", True, "service")
    check = release_budget_check(service_name="shelf-vision", change_kind="normal", now=NOW)
    assert check["allowed"] is False
    assert (
        release_budget_check(service_name="shelf-vision", change_kind="rollback", now=NOW)["allowed"] is True
    )

    # A status that stopped updating is no verdict at all.
    later = NOW + timedelta(seconds=10 * settings.EVALUATION_INTERVAL_S)
    stale = service_budget_status(service_name="shelf-vision", now=later)
    assert stale["state"] == "unknown" and {s["data_quality"] for s in stale["slos"]} == {"stale"}


@pytest.mark.django_db
def test_missing_recent_telemetry_leaves_no_verdict(make_slo):
    slo = make_slo()
    start = NOW - timedelta(hours=3)
    present = np.ones(180, dtype=bool)
    present[-20:] = False  # the source has been down for 20 minutes
    load_minutes(slo, start, np.full(180, 1000.0), np.full(180, 1000.0), present)
    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    status = service_budget_status(service_name="shelf-vision", now=NOW)
    (row,) = status["slos"]
    assert row["data_quality"] == "telemetry_missing" and row["remaining"] == 1.0
    assert status["state"] == "unknown" and status["required_extra_approvals"] == 1
