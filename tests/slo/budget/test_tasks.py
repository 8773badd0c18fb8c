"""The Celery adapters: fan-out in chunks, idempotent per instant."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from controlplane.celery import app
from slo.models.budget import SloStatus
from slo.tasks.budget import budget_evaluate_all, budget_evaluate_chunk
from tests.slo.budget.conftest import NOW, load_minutes

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


def test_it_fans_out_chunks_for_one_instant(make_slo, eager):
    slos = [make_slo() for _ in range(5)]
    for slo in slos:
        load_minutes(
            slo, NOW - timedelta(hours=1), np.full(60, 9.0), np.full(60, 10.0), np.ones(60, dtype=bool)
        )
    assert budget_evaluate_all(now_iso=NOW.isoformat(), chunk_size=2) == 5
    assert set(SloStatus.objects.values_list("evaluated_at", flat=True)) == {NOW}
    # A redelivered chunk (acks_late after a crash) evaluates nothing twice.
    assert budget_evaluate_chunk([s.pk for s in slos], NOW.isoformat()) == 0


def test_two_workers_share_the_chunks_and_none_is_evaluated_twice(make_slo, transactional_db):
    """Two real threads (each with its own PostgreSQL connection) drain one instant's chunks."""
    import threading

    from django.db import connection

    from slo.budget.chunks import evaluation_chunks_prepare, slo_evaluate_claimed
    from slo.models.budget import EvaluationChunk

    slos = [make_slo() for _ in range(12)]
    for slo in slos:
        load_minutes(
            slo, NOW - timedelta(hours=1), np.full(60, 9.0), np.full(60, 10.0), np.ones(60, dtype=bool)
        )
    assert evaluation_chunks_prepare(now=NOW, chunk_size=2) == (6, 12)
    assert evaluation_chunks_prepare(now=NOW, chunk_size=2) == (6, 12)  # idempotent
    reports = []

    def work() -> None:
        try:
            reports.append(slo_evaluate_claimed(now=NOW))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.evaluated for r in reports) == 12  # every SLO once, across both workers
    assert sum(r.claimed for r in reports) == 12
    assert list(EvaluationChunk.objects.filter(at=NOW).values_list("evaluated", flat=True)) == [2] * 6
    assert not EvaluationChunk.objects.filter(at=NOW, done_at__isnull=True).exists()
    assert set(SloStatus.objects.values_list("evaluated_at", flat=True)) == {NOW}
    assert slo_evaluate_claimed(now=NOW).evaluated == 0  # a late worker finds nothing left


def test_the_cycle_syncs_the_minutes_written_before_it_then_evaluates(make_slo, eager):
    """No separate sync ran: the evaluation cycle itself brings the just-pushed minute into the
    buckets before it evaluates, so the minute counts in the instant right after it."""
    from django.utils import timezone

    from slo.budget.buckets import floor_minute
    from slo.models.budget import BudgetMinute
    from slo.telemetry.derive import SliRow
    from slo.telemetry.storage import telemetry_sli_rows_store

    slo = make_slo()
    now = floor_minute(timezone.now())  # recent: the sync keeps minutes within their retention
    minute = int(now.timestamp() // 60) - 1  # the minute that ended at `now`
    telemetry_sli_rows_store(source="gateway:1", rows=[SliRow(slo.pk, minute, 40, 100, True)], now=now)
    assert not BudgetMinute.objects.filter(slo_id=slo.pk).exists()
    assert budget_evaluate_all(now_iso=now.isoformat()) == 1
    assert list(BudgetMinute.objects.filter(slo_id=slo.pk).values_list("good", "valid")) == [(40.0, 100.0)]
    status = SloStatus.objects.get(slo=slo)
    assert status.evaluated_at == now
    assert status.sli == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("second", "grace", "wait"),
    [(0.0, 15, 15.0), (2.5, 15, 12.5), (15.0, 15, 0.0), (40.0, 15, 0.0), (59.9, 15, 0.0), (3.0, 0, 0.0)],
)
def test_a_minute_cycle_starts_the_grace_after_the_minute_ends(second, grace, wait):
    from slo.tasks.budget import cycle_instant

    instant, seconds = cycle_instant(NOW + timedelta(seconds=second), grace)
    assert instant == NOW
    assert seconds == pytest.approx(wait)


def test_beat_starts_the_current_instant_once(make_slo, eager, settings):
    """Beat asks every 10 s: the first run past the grace starts the current minute's cycle, the
    next ones find it started and do nothing."""
    from django.utils import timezone

    from slo.budget.buckets import floor_minute
    from slo.models.budget import EvaluationChunk

    settings.BUDGET_EVALUATION_GRACE_S = 0
    make_slo()
    before = floor_minute(timezone.now())
    assert budget_evaluate_all() == 1
    after = floor_minute(timezone.now())
    started = set(EvaluationChunk.objects.values_list("at", flat=True))
    assert started and started <= {before, after}
    if before == after:  # (not across a minute boundary)
        assert budget_evaluate_all() == 0
        assert EvaluationChunk.objects.count() == 1


def test_an_existing_deployment_s_60_s_evaluate_entry_moves_to_10_s_but_an_edited_one_stays():
    import importlib

    from django.apps import apps
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    migration = importlib.import_module("slo.migrations.0022_evaluate_every_10s")
    entry = PeriodicTask.objects.get(name="budget: evaluate every SLO")  # made by post_migrate
    entry.interval, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    entry.save()
    migration.forward(apps, None)
    entry.refresh_from_db()
    assert (entry.interval.every, entry.interval.period) == (10, "seconds")
    migration.backward(apps, None)
    entry.refresh_from_db()
    assert entry.interval.every == 60
    entry.interval, _ = IntervalSchedule.objects.get_or_create(every=30, period="seconds")
    entry.save()
    migration.forward(apps, None)  # an admin's own interval is left alone
    entry.refresh_from_db()
    assert entry.interval.every == 30
