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
