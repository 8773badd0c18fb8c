"""The rollup of pending hours when a backfill marked many of them at once (PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from slo.models.telemetry import SliFeed, SliHour, SliHourPending, SliMinute
from slo.telemetry.storage import telemetry_rollup_pending

pytestmark = pytest.mark.django_db

FIRST_HOUR = 480_000  # 2024-10-04


def test_it_rolls_up_and_clears_more_than_ten_thousand_pending_hours(slos: dict[str, Any]) -> None:
    ids = [slo.pk for slo in slos.values()]
    hours = range(FIRST_HOUR, FIRST_HOUR + 4_000)  # 3 SLOs x 4,000 hours: 12,000 marks, one claim
    SliHourPending.objects.bulk_create(
        [SliHourPending(slo_id=slo_id, hour=hour, marked_at=0.0) for slo_id in ids for hour in hours],
        batch_size=5_000,
    )
    first, last = FIRST_HOUR * 60, (FIRST_HOUR + 3_999) * 60
    SliFeed.objects.create(
        slo_id=ids[0], source="push:gw", mode="retired", first_minute=first, last_minute=last + 59
    )
    SliMinute.objects.bulk_create(
        [SliMinute(slo_id=ids[0], minute=first + i, source="push:gw", good=9, valid=10) for i in range(60)]
        + [SliMinute(slo_id=ids[0], minute=last + i, source="push:gw", good=12, valid=10) for i in range(30)]
    )

    assert telemetry_rollup_pending() == 12_000
    assert not SliHourPending.objects.exists()
    assert SliHour.objects.count() == 12_000
    rolled = dict(
        ((h.slo_id, h.hour), (h.good, h.valid, h.present_minutes))
        for h in SliHour.objects.filter(
            slo_id=ids[0], hour__in=[FIRST_HOUR, FIRST_HOUR + 1, FIRST_HOUR + 3_999]
        )
    )
    assert rolled == {
        (ids[0], FIRST_HOUR): (540, 600, 60),
        (ids[0], FIRST_HOUR + 1): (0, 0, 0),  # expected but nothing reported: missing
        (ids[0], FIRST_HOUR + 3_999): (300, 300, 30),  # good capped at valid per minute
    }
