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
