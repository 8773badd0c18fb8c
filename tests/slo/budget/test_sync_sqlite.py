"""The embedded mode (SQLite): spans recorded by a push reach the budget, and the rollup clears its
marks. Runs a real SQLite database in a subprocess, since this test session is bound to PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import json
from datetime import timedelta
import django
django.setup()
from django.db import connection
from slo.budget.feed import budget_sync_pending
from slo.models.budget import BudgetHour, BudgetMinute
from slo.models.telemetry import SliHourPending, SliSpan
from slo.services import service_create, slo_create
from slo.telemetry.services import telemetry_batch_ingest, telemetry_rollup_pending
from tests.slo.telemetry.conftest import NOW, batch, requests

assert connection.vendor == "sqlite"
service_create(actor=None, data={"name": "shelf-vision", "service_class": "interactive", "tiers": ["edge"]})
base = {"service": "shelf-vision", "tier": "edge", "objective": 99, "window": {"type": "rolling", "days": 28}}
avail = slo_create(actor=None, data={**base, "name": "avail", "sli": {"kind": "availability"}})
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
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
        "DATA_DIR": str(tmp_path),
        "CELERY_BROKER_URL": "memory://",
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    from tests.slo.telemetry.conftest import BASE_MINUTE

    first_minute = int(BASE_MINUTE.timestamp() // 60)
    assert result["spans"] == [[first_minute, first_minute + 2]]
    assert result["pending_left"] == 0
    assert result["first"] == [1, 3] and result["second"] == [0, 0]
    assert result["minutes"] == [[90.0, 100.0], [91.0, 101.0], [92.0, 102.0]]
    assert result["hour"] == [273.0, 303.0, 3]
