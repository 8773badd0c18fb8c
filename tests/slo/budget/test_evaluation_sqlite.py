"""The embedded mode (SQLite): evaluation re-sums the buckets (no window state), claims chunks, and
stores the typed status columns that read back as the status document."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.embedded_sqlite import run_on_sqlite

SCRIPT = r"""
from datetime import UTC, datetime, timedelta
from slo.budget.buckets import MinuteCount
from slo.budget.chunks import evaluation_chunks_prepare, slo_evaluate_claimed
from slo.budget.evaluation import budget_minutes_record
from slo.models.budget import SloStatus, WindowState

now = datetime(2026, 3, 11, 12, 34, tzinfo=UTC)
budget_minutes_record(rows=[MinuteCount(avail.pk, now - timedelta(minutes=m), 95, 100) for m in range(1, 61)])
chunks = evaluation_chunks_prepare(now=now)
first = slo_evaluate_claimed(now=now)
again = slo_evaluate_claimed(now=now)
status = SloStatus.objects.get(slo_id=avail.pk)
print(json.dumps({
    "chunks": list(chunks), "first": first.evaluated, "again": again.evaluated,
    "states": WindowState.objects.count(), "one_hour": status.windows["1h"],
    "burn_1h": status.burn_rates["1h"], "tiers": status.tiers, "alert_state": status.alert_state,
}))
"""


@pytest.mark.slow
def test_evaluation_works_on_sqlite(tmp_path: Path) -> None:
    result = run_on_sqlite(tmp_path, SCRIPT)
    assert result["chunks"] == [1, 1]
    assert result["first"] == 1 and result["again"] == 0
    assert result["states"] == 0  # SQLite re-sums every time
    assert result["one_hour"] == {
        "minutes": 60,
        "good": 5700.0,
        "valid": 6000.0,
        "events": 6000.0,
        "missing_minutes": 0,
        "data_quality": "ok",
    }
    assert result["burn_1h"] == pytest.approx(5.0)  # 5% errors against a 1% budget
    assert len(result["tiers"]) == 4 and result["alert_state"] in ("page", "ticket", "ok")
