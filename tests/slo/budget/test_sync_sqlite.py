"""The embedded mode (SQLite): spans recorded by a push reach the budget, and the rollup clears its
marks. Runs a real SQLite database in a subprocess, since this test session is bound to PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.embedded_sqlite import run_on_sqlite

SCRIPT = r"""
from datetime import timedelta
from slo.budget.feed import budget_sync_pending
from slo.models.budget import BudgetHour, BudgetMinute
from slo.models.telemetry import SliHourPending, SliSpan
from slo.telemetry.ingest import telemetry_batch_ingest
from slo.telemetry.storage import telemetry_rollup_pending
from tests.slo.telemetry.conftest import NOW, batch, requests

# minutes 0..2 of the fixture's hour, pushed two days late
late = NOW + timedelta(days=2)
payload = batch({k: [requests("local", "ok", 90 + k), requests("local", "error", 10)] for k in range(3)})
telemetry_batch_ingest(source="gateway:1", payload=payload, now=late)
spans = list(SliSpan.objects.values_list("first_minute", "last_minute"))
telemetry_rollup_pending()
first = budget_sync_pending(now=late)
second = budget_sync_pending(now=late)
print(json.dumps({
    "spans": [list(s) for s in spans], "pending_left": SliHourPending.objects.count(),
    "first": [first.spans, first.minutes_written], "second": [second.spans, second.minutes_written],
    "minutes": sorted([m[0], m[1]] for m in BudgetMinute.objects.values_list("good", "valid")),
    "hour": list(BudgetHour.objects.values_list("good", "valid", "present_minutes").get()),
}))
"""


@pytest.mark.slow
def test_spans_reach_the_budget_on_sqlite(tmp_path: Path) -> None:
    result = run_on_sqlite(tmp_path, SCRIPT)
    from tests.slo.telemetry.conftest import BASE_MINUTE

    first_minute = int(BASE_MINUTE.timestamp() // 60)
    assert result["spans"] == [[first_minute, first_minute + 2]]
    assert result["pending_left"] == 0
    assert result["first"] == [1, 3] and result["second"] == [0, 0]
    assert result["minutes"] == [[90.0, 100.0], [91.0, 101.0], [92.0, 102.0]]
    assert result["hour"] == [273.0, 303.0, 3]
