"""Every stored minute reaches the budget: ingests record the spans they write, and the periodic
sync (run here as beat runs it) syncs exactly those spans, whatever their age."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from controlplane.celery import app
from slo.budget.buckets import ceil_hour, floor_day, floor_hour, floor_minute
from slo.budget.evaluation import slo_evaluate
from slo.budget.feed import budget_sync_pending
from slo.budget.selectors import slo_status_document
from slo.models.budget import BudgetDay, BudgetHour, BudgetMinute, SloStatus
from slo.models.telemetry import SliSpan
from slo.spec import SloSpec
from slo.telemetry.derive import SliRow
from slo.telemetry.ingest import telemetry_source_retire
from slo.telemetry.storage import telemetry_sli_rows_store
from tests.gateway.support import register  # noqa: F401 - fixture
from tests.slo.budget.conftest import load_minutes

pytestmark = pytest.mark.django_db

HISTORY_GOOD, HISTORY_VALID = 999.0, 1000.0  # 0.1% errors: burn 0.1 on a 99% SLO


def run_scheduled_sync() -> list[dict[str, int]]:
    """Every beat entry of the budget sync, with the args and kwargs beat sends."""
    from django_celery_beat.models import PeriodicTask

    app.loader.import_default_modules()  # what a worker does at start: autodiscover the tasks
    entries = list(PeriodicTask.objects.filter(task="slo.budget.sync", enabled=True))
    assert entries, "no periodic budget sync is scheduled"
    return [
        app.tasks[entry.task]
        .apply(args=json.loads(entry.args or "[]"), kwargs=json.loads(entry.kwargs or "{}"))
        .get()
        for entry in entries
    ]


def status_at(slo: Any, now: datetime) -> dict[str, Any]:
    slo_evaluate(slo_ids=[slo.pk], now=now)
    status = SloStatus.objects.get(slo=slo)
    return slo_status_document(status=status, spec=SloSpec.model_validate(slo.spec))


def buckets(slo: Any) -> dict[str, list[tuple]]:
    return {
        "minutes": sorted(
            BudgetMinute.objects.filter(slo_id=slo.pk).values_list("minute", "good", "valid", "events")
        ),
        "hours": sorted(
            BudgetHour.objects.filter(slo_id=slo.pk).values_list(
                "hour", "good", "valid", "events", "present_minutes"
            )
        ),
        "days": sorted(
            BudgetDay.objects.filter(slo_id=slo.pk).values_list(
                "day", "good", "valid", "events", "present_minutes"
            )
        ),
    }


def history_minutes(first: datetime, end: datetime, lo: datetime, hi: datetime, hole: datetime) -> int:
    """History minutes in [lo, hi): history covers [first, end) except `hole`."""
    start, stop = max(first, lo), min(end, hi)
    count = max(int((stop - start).total_seconds() // 60), 0)
    return count - (1 if start <= hole < stop else 0)


def test_a_pushed_minute_two_days_old_changes_the_3d_burn_and_budget_at_the_next_sync(make_slo, register):  # noqa: F811
    slo = make_slo()  # availability of shelf-vision, 99%, rolling 28 days
    now = floor_minute(timezone.now())
    old = now - timedelta(days=2)
    first = now - timedelta(days=3, hours=2)
    n = int((now + timedelta(minutes=2) - first).total_seconds() // 60)
    present = np.ones(n, dtype=bool)
    present[int((old - first).total_seconds() // 60)] = False  # the minute the gateway sends late
    load_minutes(slo, first, np.full(n, HISTORY_GOOD), np.full(n, HISTORY_VALID), present)
    before = status_at(slo, now)
    before_buckets = buckets(slo)

    # The gateway catches up a minute two days old, through its push endpoint.
    credentials = register("edge-late")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credentials.token}")
    body = {
        "contract_version": 1,
        "gateway": "edge-late",
        "minutes": [
            {
                "minute": old.isoformat().replace("+00:00", "Z"),
                "counters": [
                    {
                        "name": "inference_requests_total",
                        "increase": 60,
                        "labels": {
                            "service": "shelf-vision",
                            "tier": "edge",
                            "route": "local",
                            "outcome": "ok",
                        },
                    },
                    {
                        "name": "inference_requests_total",
                        "increase": 40,
                        "labels": {
                            "service": "shelf-vision",
                            "tier": "edge",
                            "route": "local",
                            "outcome": "error",
                        },
                    },
                ],
            }
        ],
    }
    response = client.post(f"/api/v1/gateways/{credentials.gateway.pk}/telemetry/", body, format="json")
    assert response.status_code == 202, response.content

    results = run_scheduled_sync()
    assert sum(r["minutes_written"] for r in results) == 1

    after_buckets = buckets(slo)
    assert BudgetMinute.objects.filter(slo_id=slo.pk, minute=old).values_list(
        "good", "valid", "events"
    ).get() == (60.0, 100.0, 100.0)
    hour_before = {h[0]: h for h in before_buckets["hours"]}[floor_hour(old)]
    hour_after = {h[0]: h for h in after_buckets["hours"]}[floor_hour(old)]
    assert hour_after[1:] == (
        hour_before[1] + 60,
        hour_before[2] + 100,
        hour_before[3] + 100,
        hour_before[4] + 1,
    )
    day_before = {d[0]: d for d in before_buckets["days"]}[floor_day(old)]
    day_after = {d[0]: d for d in after_buckets["days"]}[floor_day(old)]
    assert day_after[1:] == (day_before[1] + 60, day_before[2] + 100, day_before[3] + 100, day_before[4] + 1)

    later = now + timedelta(minutes=1)
    after = status_at(slo, later)
    for doc, at, with_minute in ((before, now, False), (after, later, True)):
        # 3d: the current hour's minutes and whole hours back to ceil_hour(now - 3 days).
        lo = ceil_hour(at - timedelta(days=3))
        count = history_minutes(first, now + timedelta(minutes=2), lo, at, old)
        good = HISTORY_GOOD * count + (60 if with_minute else 0)
        valid = HISTORY_VALID * count + (100 if with_minute else 0)
        window = doc["windows"]["3d"]
        assert (window["good"], window["valid"]) == (good, valid)
        assert window["burn_rate"] == pytest.approx(((valid - good) / valid) / 0.01, rel=1e-12)
        # the 28-day budget: all history lies inside the period
        count = history_minutes(first, now + timedelta(minutes=2), first, at, old)
        good = HISTORY_GOOD * count + (60 if with_minute else 0)
        valid = HISTORY_VALID * count + (100 if with_minute else 0)
        period = doc["windows"]["period"]
        assert (period["good"], period["valid"]) == (good, valid)
        assert doc["error_budget_remaining"] == pytest.approx(1 - (valid - good) / (0.01 * valid), rel=1e-12)
    assert after["windows"]["3d"]["burn_rate"] > before["windows"]["3d"]["burn_rate"]

    # (c) idempotent: a second run finds nothing; a replayed push is re-read and changes nothing.
    assert run_scheduled_sync() == [{"spans": 0, "minutes_read": 0, "minutes_written": 0}] * len(results)
    assert (
        client.post(f"/api/v1/gateways/{credentials.gateway.pk}/telemetry/", body, format="json").status_code
        == 202
    )
    replay = run_scheduled_sync()
    assert sum(r["spans"] for r in replay) >= 1 and sum(r["minutes_written"] for r in replay) == 0
    assert buckets(slo) == after_buckets
    assert not SliSpan.objects.exists()


def minute_rows(slo: Any, first: int, n: int, good: int, valid: int) -> list[SliRow]:
    return [SliRow(slo.pk, first + i, good, valid, True) for i in range(n)]


def epoch_minute(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


def test_it_syncs_in_bounded_transactions_and_skips_what_is_past_retention(make_slo, settings):
    slos = [make_slo() for _ in range(3)]
    now = floor_minute(timezone.now())
    current = epoch_minute(now)
    for k, slo in enumerate(slos):
        # an import of 3 days per SLO, and one older than the minute retention
        telemetry_sli_rows_store(
            source="import:test", rows=minute_rows(slo, current - 3 * 1440, 3 * 1440, 90 + k, 100)
        )
    stale = current - settings.TELEMETRY_MINUTE_RETENTION_DAYS * 1440 - 120
    telemetry_sli_rows_store(source="import:old", rows=minute_rows(slos[0], stale, 60, 1, 100))
    assert SliSpan.objects.count() == 4

    done = budget_sync_pending(now=now, max_cells=3 * 1440)  # one span per transaction
    assert (done.spans, done.minutes_written) == (4, 3 * 3 * 1440)
    for k, slo in enumerate(slos):
        total = BudgetMinute.objects.filter(slo_id=slo.pk).values_list("good", "valid")
        assert len(total) == 3 * 1440 and set(total) == {(90.0 + k, 100.0)}
        hours = BudgetHour.objects.filter(slo_id=slo.pk)
        assert (
            sum(h.good for h in hours) == (90 + k) * 3 * 1440
            and sum(h.present_minutes for h in hours) == 3 * 1440
        )
    assert not SliSpan.objects.exists()


def test_an_slo_edit_reconverts_its_stored_minutes(make_slo, users):
    from slo.services import slo_update

    slo = make_slo()
    now = floor_minute(timezone.now())
    current = epoch_minute(now)
    rows = minute_rows(slo, current - 2 * 1440, 10, 95, 100) + minute_rows(slo, current - 20, 10, 100, 100)
    telemetry_sli_rows_store(source="import:test", rows=rows)
    budget_sync_pending(now=now)
    assert set(BudgetMinute.objects.filter(slo_id=slo.pk).values_list("good", "valid")) == {
        (95.0, 100.0),
        (100.0, 100.0),
    }

    # timeslices: a minute is one slice, good when 99% of its requests were
    slo_update(
        actor=users["operator"],
        slo_id=slo.pk,
        data={**slo.spec, "budgeting_method": "timeslices", "timeslice_target": 0.99},
    )
    done = budget_sync_pending(now=now)
    assert done.minutes_written == 20
    assert sorted(BudgetMinute.objects.filter(slo_id=slo.pk).values_list("good", "valid", "events")) == (
        [(0.0, 1.0, 100.0)] * 10 + [(1.0, 1.0, 100.0)] * 10
    )
    assert sum(BudgetHour.objects.filter(slo_id=slo.pk).values_list("valid", flat=True)) == 20


def test_retiring_a_gateway_counts_the_minutes_it_was_still_expected_for(make_slo):
    slo = make_slo()
    now = floor_minute(timezone.now())
    current = epoch_minute(now)
    start = current - 600
    # two gateways feed the SLO; gateway 2 stops 30 minutes in, gateway 1 goes on
    telemetry_sli_rows_store(source="gateway:1", rows=minute_rows(slo, start, 90, 50, 50))
    telemetry_sli_rows_store(source="gateway:2", rows=minute_rows(slo, start, 30, 40, 50))
    budget_sync_pending(now=now)
    # minutes 30..89 wait for gateway 2 (its silence grace): missing, not in the budget
    assert BudgetMinute.objects.filter(slo_id=slo.pk).count() == 30

    telemetry_source_retire(source="gateway:2")
    done = budget_sync_pending(now=now)
    assert done.minutes_written == 60
    assert BudgetMinute.objects.filter(slo_id=slo.pk).count() == 90
    assert BudgetMinute.objects.filter(slo_id=slo.pk, valid=100).count() == 30


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_claimed_span_is_skipped_by_a_second_worker_and_survives_a_crash(make_slo):
    slo = make_slo()
    now = floor_minute(timezone.now())
    telemetry_sli_rows_store(source="import:test", rows=minute_rows(slo, epoch_minute(now) - 100, 10, 9, 10))
    claimed, release = threading.Event(), threading.Event()

    def crashing_worker() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT id FROM slo_slispan FOR UPDATE SKIP LOCKED")
                    assert cursor.fetchall()
                claimed.set()
                release.wait(30)
                raise RuntimeError("worker died before committing")
        except RuntimeError:
            pass
        finally:
            connection.close()

    thread = threading.Thread(target=crashing_worker)
    thread.start()
    assert claimed.wait(30)
    try:
        # another worker meanwhile: the span is taken, so it does nothing (and does not wait)
        assert budget_sync_pending(now=now).spans == 0
        assert not BudgetMinute.objects.filter(slo_id=slo.pk).exists()
    finally:
        release.set()
        thread.join(30)
    # the first worker rolled back: its span is still there, and the next run syncs it once
    done = budget_sync_pending(now=now)
    assert (done.spans, done.minutes_written) == (1, 10)
    assert budget_sync_pending(now=now).spans == 0


def test_the_scheduled_sync_runs_once_a_minute_and_without_a_window():
    from django_celery_beat.models import PeriodicTask

    from slo.schedules import PERIODIC_TASKS

    declared = [t for t in PERIODIC_TASKS if t["task"] == "slo.budget.sync"]
    assert len(declared) == 1 and declared[0]["every_s"] == 60 and "kwargs_json" not in declared[0]
    assert PeriodicTask.objects.filter(task="slo.budget.sync", interval__every=60).exists()


def test_spans_are_recorded_with_the_minutes_or_not_at_all(make_slo):
    slo = make_slo()
    current = epoch_minute(datetime.now(UTC))
    rows = minute_rows(slo, current - 500, 3, 1, 1) + minute_rows(slo, current - 10, 5, 1, 1)
    with pytest.raises(RuntimeError), transaction.atomic():
        telemetry_sli_rows_store(source="import:test", rows=rows)
        raise RuntimeError("rolled back")
    assert not SliSpan.objects.exists()
    telemetry_sli_rows_store(source="import:test", rows=rows)
    # minutes far apart are two spans, so the sync does not re-read the 8 hours between them
    assert sorted(SliSpan.objects.values_list("first_minute", "last_minute")) == [
        (current - 500, current - 498),
        (current - 10, current - 6),
    ]


def test_late_minutes_of_many_slos_at_scattered_times_are_each_synced_once(make_slo):
    # more distinct ranges than one run reads separately: they are widened to whole hours
    slos = [make_slo() for _ in range(70)]
    now = floor_minute(timezone.now())
    current = epoch_minute(now)
    for k, slo in enumerate(slos):
        late = current - 2 * 1440 + 37 * k  # one minute each, 37 minutes apart
        telemetry_sli_rows_store(source=f"gateway:{k}", rows=minute_rows(slo, late, 1, k, 100))
    done = budget_sync_pending(now=now)
    assert (done.spans, done.minutes_written) == (70, 70)
    stored = BudgetMinute.objects.filter(slo_id__in=[s.pk for s in slos]).values_list(
        "slo_id", "minute", "good"
    )
    assert sorted(stored) == sorted(
        (slo.pk, datetime.fromtimestamp((current - 2 * 1440 + 37 * k) * 60, tz=UTC), float(k))
        for k, slo in enumerate(slos)
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_second_sync_leaves_while_one_is_running(make_slo):
    slo = make_slo()
    now = floor_minute(timezone.now())
    telemetry_sli_rows_store(source="import:test", rows=minute_rows(slo, epoch_minute(now) - 50, 5, 9, 10))
    running, release = threading.Event(), threading.Event()

    def running_sync() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext('slo_budget_sync'))")
                assert cursor.fetchone()[0]
                running.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=running_sync)
    thread.start()
    assert running.wait(30)
    try:
        assert budget_sync_pending(now=now).spans == 0  # it does not wait, and reads nothing
        assert SliSpan.objects.count() == 1
    finally:
        release.set()
        thread.join(30)
    assert budget_sync_pending(now=now).minutes_written == 5
