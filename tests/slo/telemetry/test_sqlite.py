"""The embedded mode runs SQLite: the bulk ingest path (batched INSERT, ON CONFLICT upserts,
MIN/MAX instead of LEAST/GREATEST) must work there too. Runs a real SQLite database in a
subprocess, since this test session is bound to PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.embedded_sqlite import run_on_sqlite

SCRIPT = r"""
from datetime import UTC, datetime
from slo.models.telemetry import SeriesMinute, SliMinute
from slo.telemetry.selectors import sli_hours, sli_minutes
from slo.telemetry.ingest import telemetry_batch_ingest
from slo.telemetry.storage import telemetry_rollup_pending
from tests.slo.telemetry.conftest import NOW, at, batch, standard_minute

payload = batch({k: standard_minute(k) for k in range(3)})
telemetry_batch_ingest(source="gateway:1", payload=payload, now=NOW)
first = sorted(SliMinute.objects.values_list("minute", "good", "valid"))
telemetry_batch_ingest(source="gateway:1", payload=payload, now=NOW)  # re-send: replaces
telemetry_rollup_pending()
data = sli_minutes([avail.pk], at(0), at(3))
hours = sli_hours([avail.pk], at(0), at(60))
print(json.dumps({
    "same_after_resend": first == sorted(SliMinute.objects.values_list("minute", "good", "valid")),
    "series": SeriesMinute.objects.count(), "good": data.good[0].tolist(), "present": data.present[0].tolist(),
    "hour_good": int(hours.good[0, 0]), "hour_present": int(hours.present_minutes[0, 0]),
}))
"""


@pytest.mark.slow
def test_push_ingest_works_on_sqlite(tmp_path: Path) -> None:
    result = run_on_sqlite(tmp_path, SCRIPT)
    from tests.slo.telemetry.conftest import expected_standard, standard_minute

    assert result["same_after_resend"] is True
    assert result["series"] == 3 * len(standard_minute(0))
    assert result["good"] == [expected_standard(k)["edge-availability"][0] for k in range(3)]
    assert result["present"] == [True, True, True]
    assert result["hour_good"] == sum(result["good"]) and result["hour_present"] == 3


STAMPS_SCRIPT = r"""
from slo.models.telemetry import SeriesMinute, SliMinute
from slo.telemetry.ingest import telemetry_batch_ingest
from tests.slo.telemetry.conftest import NOW, batch, requests

old = batch({0: [requests("local", "ok", 1)], 1: [requests("local", "ok", 1)]}, sent_at="2025-03-01T12:00:01Z")
new = batch({0: [requests("local", "ok", 2)]}, sent_at="2025-03-01T12:00:02Z")
telemetry_batch_ingest(source="gateway:1", payload=old, now=NOW)
telemetry_batch_ingest(source="gateway:1", payload=new, now=NOW)
replay = telemetry_batch_ingest(source="gateway:1", payload=old, now=NOW)
print(json.dumps({
    "stale": replay.stale_minutes_ignored, "stored": replay.minutes,
    "valid": [v for _, v in sorted(SliMinute.objects.values_list("minute", "valid"))],
    "series": [v for _, v in sorted(SeriesMinute.objects.values_list("minute", "value"))],
}))
"""


@pytest.mark.slow
def test_the_newest_write_of_a_minute_wins_on_sqlite(tmp_path: Path) -> None:
    result = run_on_sqlite(tmp_path, STAMPS_SCRIPT)
    # the replay re-stores minute 1 (its own stamp) and leaves the corrected minute 0 alone
    assert result == {"stale": 1, "stored": 1, "valid": [2, 1], "series": [2.0, 1.0]}
