"""The feed from stored telemetry (helper tables SliMinute/SliFeed) into budget buckets."""

from __future__ import annotations

import pytest

from slo.budget.evaluation import slo_evaluate
from slo.budget.feed import budget_sync
from slo.budget.selectors import slo_status_document
from slo.models.budget import BudgetMinute, SloStatus
from slo.models.telemetry import SliFeed, SliMinute
from slo.spec import SloSpec
from tests.slo.budget.conftest import NOW

pytestmark = pytest.mark.django_db


def test_it_copies_present_minutes_once_and_follows_corrections(make_slo):
    slo = make_slo()
    first = int(NOW.timestamp() // 60) - 10
    SliFeed.objects.create(
        slo=slo, source="push:gw-1", mode="push", first_minute=first, last_minute=first + 9
    )
    SliMinute.objects.bulk_create(
        [
            SliMinute(slo=slo, minute=first + i, source="push:gw-1", good=95, valid=100)
            for i in range(10)
            if i != 4
        ]
        + [SliMinute(slo=slo, minute=first + 4, source="push:gw-1", good=0, valid=0, present=False)]
    )
    assert budget_sync(now=NOW, minutes=15) == 9  # the gap minute stays missing
    assert budget_sync(now=NOW, minutes=15) == 0  # nothing changed: nothing written
    SliMinute.objects.filter(slo=slo, minute=first).update(good=100)  # a re-sent, corrected minute
    assert budget_sync(now=NOW, minutes=15) == 1
    assert BudgetMinute.objects.filter(slo_id=slo.pk).count() == 9

    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    status = SloStatus.objects.get(slo=slo)
    window = slo_status_document(status=status, spec=SloSpec.model_validate(slo.spec))["windows"]["30m"]
    assert (window["good"], window["valid"], window["missing_minutes"]) == (860.0, 900.0, 21)
