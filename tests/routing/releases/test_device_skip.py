"""Release waves skip devices that are hot or short of memory, with the reason in the wave's
evidence; the next wave tries a skipped device again once it has cooled."""

from __future__ import annotations

from datetime import timedelta

import pytest

from routing.fleet.services import heartbeat_record
from routing.models.fleet import GatewayRevision
from routing.models.releases import ReleaseGateway, ReleaseTransition
from routing.releases import rollout
from tests.routing.releases.conftest import T0
from tests.routing.releases.test_services import ack, run_minutes, submitted_and_approved, wave_ids

pytestmark = pytest.mark.django_db

HOT = {"temperature_c": 91.5, "memory_headroom_pct": 30.0, "queue_depth": 1, "active_workers": 2}
SHORT = {"temperature_c": 60.0, "memory_headroom_pct": 4.0}
COOL = {"temperature_c": 60.0, "memory_headroom_pct": 30.0}


def _report(gateway_id: int, health: dict, at) -> None:
    from routing.models.fleet import Gateway

    applied = Gateway.objects.get(pk=gateway_id).applied_revision
    heartbeat_record(gateway_id=gateway_id, data={"applied_revision": applied, "health": health}, now=at)


def _to_second_wave(release, healthy, push) -> None:
    assert rollout.release_step(release_id=release.pk, now=T0) == "wave:0:delivering"
    release.refresh_from_db()
    ack(wave_ids(release, 0), T0 + timedelta(seconds=10))
    assert rollout.release_step(release_id=release.pk, now=T0 + timedelta(seconds=20)) == "wave:0:baking"


def test_a_hot_device_is_skipped_by_the_next_wave_with_the_reason_in_the_evidence(
    healthy, make_release, users, push
):
    release = submitted_and_approved(make_release, users)
    _to_second_wave(release, healthy, push)
    hot, short, *rest = wave_ids(release, 1)
    # reports just before the second wave begins (T0 + 4 min, after the 180 s bake)
    _report(hot, HOT, T0 + timedelta(minutes=3, seconds=30))
    _report(short, SHORT, T0 + timedelta(minutes=3, seconds=30))
    results = run_minutes(release, healthy, push, T0 + timedelta(minutes=1), 3)
    assert results[-1] == "wave:1:delivering", results
    transition = ReleaseTransition.objects.filter(release=release, wave=1, event="advance").get()
    skipped = {s["gateway"]: s for s in transition.evidence["skipped"]}
    assert set(skipped) == {hot, short}
    assert skipped[hot]["reason"] == "device at 91.5 C, above 85 C"
    assert skipped[short]["reason"] == "memory headroom 4%, below 10%"
    assert (skipped[hot]["temperature_c"], skipped[hot]["max_temperature_c"]) == (91.5, 85.0)
    assert transition.evidence["gateways"] == rest
    assert "2 skipped (hot or short of memory)" in transition.reason
    # the skipped devices got nothing; the others got the release
    assert not GatewayRevision.objects.filter(release_id=release.pk, gateway_id__in=[hot, short]).exists()
    assert set(
        GatewayRevision.objects.filter(release_id=release.pk).values_list("gateway_id", flat=True)
    ) == {
        *wave_ids(release, 0),
        *rest,
    }
    row = ReleaseGateway.objects.get(release=release, gateway_id=hot)
    assert row.skipped_at == T0 + timedelta(minutes=4) and row.touched_at is None
    # the wave waits only for the gateways it delivered to
    ack(rest, T0 + timedelta(minutes=4, seconds=10))
    assert rollout.release_step(release_id=release.pk, now=T0 + timedelta(minutes=4, seconds=20)) == (
        "wave:1:baking"
    )


def test_a_device_skipped_by_one_wave_is_delivered_by_the_next_once_it_has_cooled(
    healthy, make_release, users, push
):
    release = submitted_and_approved(
        make_release,
        users,
        waves=[{"percent": 25, "bake_s": 60}, {"percent": 75, "bake_s": 60}, {"percent": 100, "bake_s": 60}],
        confirm_wave_sizes=True,
    )
    _to_second_wave(release, healthy, push)
    second, other = wave_ids(release, 1)
    _report(second, HOT, T0 + timedelta(minutes=1, seconds=50))
    results = run_minutes(release, healthy, push, T0 + timedelta(minutes=1), 1)
    assert results == ["wave:1:delivering"], results
    assert ReleaseGateway.objects.get(release=release, gateway_id=second).skipped_at is not None
    # wave 1 waits for (and judges) only the gateway it delivered to; the hot device cools meanwhile
    ack([other], T0 + timedelta(minutes=2, seconds=1))
    assert rollout.release_step(release_id=release.pk, now=T0 + timedelta(minutes=2, seconds=5)) == (
        "wave:1:baking"
    )
    _report(second, COOL, T0 + timedelta(minutes=2, seconds=50))
    results = run_minutes(release, healthy, push, T0 + timedelta(minutes=2), 2)
    assert results[-1] == "wave:2:delivering", results
    transition = ReleaseTransition.objects.filter(release=release, wave=2, event="advance").get()
    assert transition.evidence["retried"] == [second] and transition.evidence["skipped"] == []
    row = ReleaseGateway.objects.get(release=release, gateway_id=second)
    assert (row.wave, row.skipped_at, row.skip_reason) == (2, None, "")
    assert GatewayRevision.objects.filter(release_id=release.pk, gateway_id=second).exists()
