"""Prometheus stopped and started (a real server, tests/support/prometheus.py): while it is down the
release gate that reads the SLOs has no verdict (inconclusive: the release waits for a person, it
neither passes nor fails silently); once it is back the pull backfills from the watermark, with no gap.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from routing.releases import gates
from slo.budget.evaluation import slo_evaluate_all
from slo.budget.feed import budget_sync
from slo.budget.selectors import release_budget_check
from slo.counters import from_epoch_minute
from slo.telemetry.pull import telemetry_source_pull
from slo.telemetry.selectors import sli_minutes
from slo.telemetry.sources import telemetry_source_create
from tests.support import prometheus as support
from tests.support.prometheus import LoadedPrometheus, PrometheusServer

prometheus_history = support.prometheus_history
prometheus_server = support.prometheus_server

pytestmark = [pytest.mark.slow, pytest.mark.prometheus, pytest.mark.django_db]

FAST_FAIL = {"max_retries": 0, "timeout_s": 2}


@pytest.fixture
def setup(
    users: Any, service: Any, prometheus_server: PrometheusServer, prometheus_history: LoadedPrometheus
) -> dict[str, Any]:
    from slo.services import slo_create

    slo = slo_create(
        actor=users["operator"],
        data={
            "name": "edge-availability",
            "service": "shelf-vision",
            "tier": "edge",
            "sli": {"kind": "availability"},
            "objective": 95.0,
            "window": {"type": "rolling", "days": 28},
        },
    )
    source = telemetry_source_create(
        actor=users["operator"],
        data={
            "name": "edge-prom",
            "url": prometheus_server.url,
            "tier": "edge",
            "scrape_lag_s": 0,
            "backfill_minutes": 120,
        },
    )
    start = from_epoch_minute(prometheus_history.history.start_s // 60)
    return {"slo": slo, "source": source, "start": start}


def minute(setup: dict[str, Any], i: int) -> datetime:
    return setup["start"] + timedelta(minutes=i)


def gate_at(now: datetime) -> tuple[gates.GateOutcome, dict[str, Any]]:
    """The data-quality gate a normal release would see at `now`, after the engine ran at `now`."""
    budget_sync(now=now, minutes=240)
    slo_evaluate_all(now=now)
    check = release_budget_check(service_name="shelf-vision", change_kind="normal", now=now)
    return gates.gate_data_quality(release=SimpleNamespace(kind="normal"), check=check), check


def _outage(setup: dict[str, Any], prometheus_server: PrometheusServer) -> None:
    """Healthy pull at minute 120, then Prometheus down for 30 minutes of failing pulls."""
    source_id = setup["source"].pk
    assert telemetry_source_pull(source_id=source_id, now=minute(setup, 120)).ok
    prometheus_server.stop()
    for i in range(5, 35, 5):
        failed = telemetry_source_pull(
            source_id=source_id, now=minute(setup, 120 + i), puller_options=FAST_FAIL
        )
        assert failed.claimed and not failed.ok


def test_a_gate_is_inconclusive_while_prometheus_is_down(
    setup: dict[str, Any],
    prometheus_server: PrometheusServer,
) -> None:
    from slo.models.budget import SloStatus

    outcome, _check = (
        gate_at(minute(setup, 120))
        if telemetry_source_pull(source_id=setup["source"].pk, now=minute(setup, 120)).ok
        else (None, None)
    )
    assert outcome is not None and outcome.outcome == gates.PASS, outcome
    _outage(setup, prometheus_server)
    outcome, _check = gate_at(minute(setup, 150))
    status = SloStatus.objects.get(slo=setup["slo"])
    short = str(status.windows)[:600]  # evidence only: its layout belongs to the budget engine
    assert outcome.outcome == gates.INCONCLUSIVE, (
        f"Prometheus down for 30 minutes, the gate says {outcome.outcome}: SLO period data quality "
        f"{status.data_quality!r}, short windows {short}"
    )


def test_the_pull_backfills_the_outage_without_a_gap(
    setup: dict[str, Any],
    prometheus_server: PrometheusServer,
    prometheus_history: LoadedPrometheus,
) -> None:
    from tests.slo.telemetry.test_pull import availability

    _outage(setup, prometheus_server)
    missing = sli_minutes([setup["slo"].pk], minute(setup, 120), minute(setup, 150))
    assert not missing.present.any()  # while down: missing, never good

    prometheus_server.start()
    assert telemetry_source_pull(source_id=setup["source"].pk, now=minute(setup, 160)).ok
    data = sli_minutes([setup["slo"].pk], minute(setup, 100), minute(setup, 160))
    # the history has its own scrape gap (minutes 150..155): those stay missing, nothing else does
    good, valid, present = (a[100:160] for a in availability(prometheus_history))
    assert np.flatnonzero(~data.present[0]).tolist() == np.flatnonzero(~present).tolist()
    assert data.good[0].tolist() == good.tolist() and data.valid[0].tolist() == valid.tolist()
    outcome, _check = gate_at(minute(setup, 160))
    assert outcome.outcome == gates.PASS, outcome.evidence
