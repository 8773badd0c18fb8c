"""Fixtures for reports: SLOs with known per-minute history around one calendar week."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

if TYPE_CHECKING:
    from slo.models import Slo

# Django imports live inside the fixtures so the pure-core tests also run with `-p no:django`.

TZ = "Europe/Paris"
# The week of Monday 2026-11-16 in Paris (UTC+1): [2026-11-15 23:00Z, 2026-11-22 23:00Z).
WEEK_START = datetime(2026, 11, 15, 23, 0, tzinfo=UTC)
WEEK_END = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
PREVIOUS_START = WEEK_START - timedelta(days=7)
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


@dataclass
class History:
    """Per-minute arrays of one SLO starting at `start` (what was recorded)."""

    slo: Slo
    start: datetime
    good: np.ndarray
    valid: np.ndarray
    present: np.ndarray

    def window(self, start: datetime, end: datetime) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo = int((start - self.start).total_seconds() // 60)
        hi = int((end - self.start).total_seconds() // 60)
        return self.good[lo:hi], self.valid[lo:hi], self.present[lo:hi]


@pytest.fixture
def make_slo(users: dict[str, Any], service: Any) -> Callable[..., Slo]:
    from slo.services import slo_create

    counter = iter(range(1000))

    def build(**overrides: Any) -> Slo:
        doc = {
            "name": f"availability-{next(counter)}",
            "service": "shelf-vision",
            "sli": {"kind": "availability"},
            "objective": 99.0,
            "window": {"type": "rolling", "days": 28},
        }
        doc.update(overrides)
        return slo_create(actor=users["operator"], data=doc)

    return build


@pytest.fixture
def backdate_versions() -> Callable[[], None]:
    """SLO versions are created "now" (real time, after the test's periods): move them back so
    the report finds the version in force during the period."""

    def run() -> None:
        from slo.models import SloVersion

        SloVersion.objects.update(created_at=PREVIOUS_START - timedelta(days=30))

    return run


@pytest.fixture
def history() -> Callable[..., History]:
    """Record random but known minutes for an SLO over the previous and the report week."""

    def build(
        slo: Slo, *, seed: int = 1, bad_rate: float = 0.004, missing_last_minute: bool = True
    ) -> History:
        from slo.budget.buckets import MinuteCount
        from slo.budget.evaluation import budget_minutes_record

        rng = np.random.default_rng(seed)
        start = PREVIOUS_START
        n = int((WEEK_END - start).total_seconds() // 60) + 60  # an hour past the end too
        valid = rng.poisson(120, n).astype(np.float64)
        bad = rng.binomial(valid.astype(np.int64), bad_rate).astype(np.float64)
        # an incident in the report week: two hours of 20% errors
        incident = int((WEEK_START + timedelta(days=2, hours=3) - start).total_seconds() // 60)
        bad[incident : incident + 120] = np.floor(valid[incident : incident + 120] * 0.2)
        good = valid - bad
        present = rng.random(n) > 0.03  # 3% of minutes without telemetry
        if missing_last_minute:
            present[int((WEEK_END - start).total_seconds() // 60) - 1] = False
        rows = [
            MinuteCount(slo.pk, start + timedelta(minutes=int(i)), float(good[i]), float(valid[i]))
            for i in np.flatnonzero(present)
        ]
        # Recorded day by day as the minutes arrive (the clock follows them), so every minute is
        # within the minute retention when it is written.
        for day in range(0, n, 1440):
            batch = [r for r in rows if day <= (r.minute - start).total_seconds() // 60 < day + 1440]
            budget_minutes_record(rows=batch, now=start + timedelta(minutes=day + 1440))
        return History(slo, start, good, valid, present)

    return build


@pytest.fixture
def locmem_email(settings: Any) -> Iterator[Any]:
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PUBLIC_URL = "https://slo.example.test"
    mail.outbox = []
    yield mail


@pytest.fixture
def eager_celery() -> Iterator[None]:
    from controlplane.celery import app

    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False
