"""The release services end to end over the real database: gates, approvals, waves, canary
analysis, rollback. Gateways are registered and acknowledge through the fleet services' heartbeat;
telemetry goes through the real ingest; budgets through the real evaluation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controlplane.errors import Conflict, Forbidden, IllegalTransition, ValidationFailed
from controlplane.models import AuditEvent
from routing.fleet.services import heartbeat_record
from routing.models.fleet import Delivery, Gateway, GatewayRevision
from routing.models.releases import GateResult, Release, ReleaseRollback, ReleaseTransition
from routing.releases import lifecycle, rollout, service_settings, transitions
from tests.routing.releases.conftest import T0

pytestmark = pytest.mark.django_db


def ack(gateway_ids: list[int], now: Any) -> None:
    for gateway in Gateway.objects.filter(pk__in=gateway_ids):
        heartbeat_record(gateway_id=gateway.pk, data={"applied_revision": gateway.desired_revision}, now=now)


def submitted_and_approved(make_release: Any, users: dict[str, Any], **data: Any) -> Release:
    release = make_release(**data)
    lifecycle.release_submit(actor=users["operator"], release_id=release.pk, now=T0)
    lifecycle.release_approve(actor=users["approver"], release_id=release.pk, comment="looks right", now=T0)
    return Release.objects.get(pk=release.pk)


def wave_ids(release: Release, wave: int) -> list[int]:
    return release.waves[wave]["gateway_ids"]


def run_minutes(
    release: Release,
    healthy: dict[str, Any],
    push: Any,
    start: Any,
    minutes: int,
    bad: set[int] = frozenset(),
) -> list[str]:
    """Push one minute per gateway, then tick at the end of it; returns the step results."""
    results = []
    for i in range(minutes):
        minute = start + timedelta(minutes=i)
        for gateway in healthy["gateways"]:
            if gateway.pk in bad:
                push(gateway, minute, 1, ok_fast=100, timeouts=200)
            else:
                push(gateway, minute, 1, ok_fast=300)
        results.append(rollout.release_step(release_id=release.pk, now=minute + timedelta(minutes=1)))
        release.refresh_from_db()
        if release.state not in ("rolling_out",):
            break
    return results


def test_a_good_release_completes_every_wave_and_every_transition_is_audited(
    healthy, make_release, users, push
):
    release = submitted_and_approved(make_release, users)
    assert release.state == "approved" and [len(w["gateway_ids"]) for w in release.waves] == [1, 3]
    assert rollout.release_step(release_id=release.pk, now=T0) == "wave:0:delivering"
    release.refresh_from_db()
    canary = wave_ids(release, 0)
    revision = GatewayRevision.objects.get(gateway_id=canary[0], release_id=release.pk)
    assert revision.bundle["routing_policy"]["description"].startswith("v2")
    # no ACK yet: the wave waits
    assert rollout.release_step(release_id=release.pk, now=T0 + timedelta(seconds=5)).startswith(
        "wave:0:waiting"
    )
    ack(canary, T0 + timedelta(seconds=10))
    assert rollout.release_step(release_id=release.pk, now=T0 + timedelta(seconds=20)) == "wave:0:baking"
    results = run_minutes(release, healthy, push, T0 + timedelta(minutes=1), 3)
    assert results == ["wave:0:baking", "wave:0:baking", "wave:1:delivering"], results  # bake: 180 s
    release.refresh_from_db()
    ack(wave_ids(release, 1), T0 + timedelta(minutes=4, seconds=10))
    results = run_minutes(release, healthy, push, T0 + timedelta(minutes=4), 4)
    release.refresh_from_db()
    assert release.state == "completed", results
    canary_results = GateResult.objects.filter(release=release, gate="canary")
    assert canary_results.exists() and set(canary_results.values_list("outcome", flat=True)) == {"pass"}
    transitions = list(ReleaseTransition.objects.filter(release=release).values_list("event", flat=True))
    assert transitions == ["submit", "approve", "start", "advance", "complete"]
    audited = AuditEvent.objects.filter(
        object_type="routing.release", action__in=[f"release_{e}" for e in transitions]
    )
    assert audited.count() == len(transitions)


def test_a_bad_canary_is_rolled_back_to_the_last_known_good_with_rollback_priority(
    healthy, make_release, users, push
):
    release = submitted_and_approved(make_release, users)
    rollout.release_step(release_id=release.pk, now=T0)
    release.refresh_from_db()
    canary = wave_ids(release, 0)
    ack(canary, T0 + timedelta(seconds=10))
    rollout.release_step(release_id=release.pk, now=T0 + timedelta(seconds=20))
    results = run_minutes(release, healthy, push, T0 + timedelta(minutes=1), 5, bad=set(canary))
    release.refresh_from_db()
    assert release.state == "rolled_back", results
    assert results[0] == "wave:0:baking"  # one failing measurement is not enough (flapping)
    rollback = ReleaseRollback.objects.get(release=release)
    assert rollback.trigger == "canary" and rollback.evidence["measurement"]["verdict"] == "fail"
    gateway = Gateway.objects.get(pk=canary[0])
    newest = GatewayRevision.objects.filter(gateway=gateway).order_by("-revision").first()
    assert (
        newest.rollback
        and newest.bundle["routing_policy"]["description"]
        == GatewayRevision.objects.get(gateway=gateway, revision=1).bundle["routing_policy"]["description"]
    )
    assert Delivery.objects.get(revision=newest).priority == Delivery.PRIORITY_ROLLBACK
    # gateways of the later wave were never touched
    assert not GatewayRevision.objects.filter(
        gateway_id__in=wave_ids(release, 1), release_id=release.pk
    ).exists()
    ack(canary, T0 + timedelta(minutes=8))
    assert rollout.rollback_confirm(now=T0 + timedelta(minutes=8)) == [rollback.pk]


def test_an_exhausted_budget_refuses_normal_releases_but_not_a_hotfix_with_a_reason(
    fleet, push, evaluate, make_release, users
):
    gateways = fleet(2)
    for gateway in gateways:
        push(gateway, T0 - timedelta(minutes=60), 60, ok_fast=100, timeouts=100)  # half bad: budget spent
    evaluate(T0)
    release = make_release(waves=[{"percent": 50, "bake_s": 180}, {"percent": 100, "bake_s": 120}])
    with pytest.raises(Conflict) as refused:
        lifecycle.release_submit(actor=users["operator"], release_id=release.pk, now=T0)
    assert {p["path"] for p in refused.value.problems} >= {"gates.error_budget"}
    release.refresh_from_db()
    assert release.state == "draft"
    budget = GateResult.objects.get(release=release, gate="error_budget")
    assert budget.outcome == "fail" and budget.evidence["state"] == "exhausted"
    with pytest.raises(ValidationFailed):
        make_release(
            kind="hotfix", reason="", waves=[{"percent": 50, "bake_s": 180}, {"percent": 100, "bake_s": 120}]
        )
    hotfix = make_release(
        kind="hotfix",
        reason="fixes the timeouts",
        waves=[{"percent": 50, "bake_s": 180}, {"percent": 100, "bake_s": 120}],
    )
    lifecycle.release_submit(actor=users["operator"], release_id=hotfix.pk, now=T0)
    hotfix.refresh_from_db()
    assert hotfix.state == "pending_approval"
    assert GateResult.objects.get(release=hotfix, gate="error_budget").outcome == "pass"


def test_a_release_whose_slos_have_no_data_pauses_for_a_person(fleet, evaluate, make_release, users):
    fleet(2)
    evaluate(T0)  # SLOs exist but nothing was ever pushed
    release = make_release(waves=[{"percent": 50, "bake_s": 180}, {"percent": 100, "bake_s": 120}])
    lifecycle.release_submit(actor=users["operator"], release_id=release.pk, now=T0)
    release.refresh_from_db()
    assert release.state == "paused" and release.paused_from == "pending_approval"
    assert "data_quality" in release.paused_reason
    assert GateResult.objects.get(release=release, gate="data_quality").outcome == "inconclusive"
    with pytest.raises(IllegalTransition):
        lifecycle.release_approve(actor=users["approver"], release_id=release.pk, comment="ok", now=T0)
    with pytest.raises(Forbidden):  # the author cannot overrule the gate
        lifecycle.release_resume(actor=users["operator"], release_id=release.pk, reason="fine", now=T0)
    lifecycle.release_resume(
        actor=users["approver"], release_id=release.pk, reason="new service, no traffic yet", now=T0
    )
    release.refresh_from_db()
    assert release.state == "pending_approval" and "submission" in release.overrides


def test_n_approvals_are_needed_and_one_rejection_stops(healthy, make_release, users):
    service_settings.release_settings_save(
        actor=users["admin"],
        service_name="shelf-vision",
        data={"required_approvals": 2, "canary": {"lag_minutes": 0}},
    )
    release = make_release()
    lifecycle.release_submit(actor=users["operator"], release_id=release.pk, now=T0)
    lifecycle.release_approve(actor=users["approver"], release_id=release.pk, comment="one", now=T0)
    release.refresh_from_db()
    assert release.state == "pending_approval" and release.required_approvals == 2
    with pytest.raises(Conflict):
        lifecycle.release_approve(actor=users["approver"], release_id=release.pk, comment="again", now=T0)
    lifecycle.release_approve(actor=users["approver2"], release_id=release.pk, comment="two", now=T0)
    release.refresh_from_db()
    assert release.state == "approved"

    other = make_release()
    lifecycle.release_cancel(actor=users["operator"], release_id=release.pk, reason="make room", now=T0)
    lifecycle.release_submit(actor=users["operator"], release_id=other.pk, now=T0)
    lifecycle.release_reject(actor=users["approver"], release_id=other.pk, comment="not now", now=T0)
    other.refresh_from_db()
    assert other.state == "rejected"
    with pytest.raises(IllegalTransition):
        lifecycle.release_approve(actor=users["approver2"], release_id=other.pk, comment="too late", now=T0)


def test_the_author_cannot_approve_even_as_an_approver(healthy, users, documents):
    release = lifecycle.release_create(
        actor=users["approver"],
        data={
            "service": "shelf-vision",
            "routing_policy_version": 2,
            "waves": [{"percent": 100, "bake_s": 0}],
        },
        now=T0,
    )
    lifecycle.release_submit(actor=users["approver"], release_id=release.pk, now=T0)
    with pytest.raises(Forbidden):
        lifecycle.release_approve(actor=users["approver"], release_id=release.pk, comment="mine", now=T0)


def test_a_person_rolls_back_a_release_during_a_freeze(healthy, make_release, users, push, evaluate):
    release = submitted_and_approved(make_release, users)
    rollout.release_step(release_id=release.pk, now=T0)
    release.refresh_from_db()
    for gateway in healthy["gateways"]:  # the budget is spent meanwhile: frozen
        push(gateway, T0, 30, ok_fast=100, timeouts=200)
    evaluate(T0 + timedelta(minutes=31))
    lifecycle.release_rollback(
        actor=users["operator"], release_id=release.pk, reason="budget spent", now=T0 + timedelta(minutes=31)
    )
    release.refresh_from_db()
    assert release.state == "rolled_back"
    assert ReleaseRollback.objects.get(release=release).trigger == "manual"
    with pytest.raises(IllegalTransition):
        lifecycle.release_rollback(actor=users["operator"], release_id=release.pk, reason="again")


def test_page_level_burn_rolls_back_a_release_in_progress(healthy, make_release, users, push, evaluate):
    release = submitted_and_approved(make_release, users)
    rollout.release_step(release_id=release.pk, now=T0)
    release.refresh_from_db()
    for gateway in healthy["gateways"]:
        push(gateway, T0, 10, ok_fast=10, timeouts=300)
    evaluate(T0 + timedelta(minutes=10))
    assert rollout.release_step(release_id=release.pk, now=T0 + timedelta(minutes=10)) == "rolled_back:burn"
    rollback = ReleaseRollback.objects.get(release=release)
    assert rollback.evidence["alert"]["slo"] in ("latency", "availability")


def test_a_page_alert_steps_the_release_at_once_without_waiting_for_the_tick(
    healthy, make_release, users, push, evaluate, django_capture_on_commit_callbacks
):
    """The evaluation that fires the page alert enqueues the release's step on commit (slo's
    `page_alerts_fired`): the rollback is issued then, not at the next tick. No tick runs here."""
    from controlplane.celery import app

    release = submitted_and_approved(make_release, users)
    rollout.release_step(release_id=release.pk, now=T0)
    for gateway in healthy["gateways"]:
        push(gateway, T0, 10, ok_fast=10, timeouts=300)
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            evaluate(T0 + timedelta(minutes=10))
    finally:
        app.conf.task_always_eager = False
    release.refresh_from_db()
    assert release.state == "rolled_back"
    rollback = ReleaseRollback.objects.get(release=release)
    assert rollback.trigger == "burn"
    assert rollout.releases_step_on_page(None, services=["no-such-service"]) == []


def test_a_gateway_in_another_open_release_cannot_be_targeted_twice(healthy, make_release, users):
    first = make_release()
    lifecycle.release_submit(actor=users["operator"], release_id=first.pk, now=T0)
    second = make_release()
    with pytest.raises(Conflict):
        lifecycle.release_submit(actor=users["operator"], release_id=second.pk, now=T0)


def test_two_ticks_never_advance_a_release_twice(healthy, make_release, users):
    release = submitted_and_approved(make_release, users)
    stale = Release.objects.get(pk=release.pk)
    rollout.release_step(release_id=release.pk, now=T0)
    # A second worker that read the row before the first claimed it: its claim updates nothing.
    with pytest.raises(Conflict):
        transitions.release_claim(stale, T0, wave_phase="delivering")
    assert GatewayRevision.objects.filter(release_id=release.pk).count() == 1
    assert rollout.release_step(release_id=release.pk, now=T0).startswith("wave:0:waiting")
    assert GatewayRevision.objects.filter(release_id=release.pk).count() == 1


def test_a_wave_is_not_judged_on_slos_of_tiers_it_has_no_gateway_on(
    healthy, make_release, users, push, evaluate
):
    from slo.services import slo_create

    # an SLO of the service's public cloud tier, healthy, fed by a gateway outside the canary wave
    slo_create(
        actor=users["operator"],
        data={
            "name": "cloud-latency",
            "service": "shelf-vision",
            "tier": "public_cloud",
            "sli": {"kind": "latency", "threshold_ms": 500},
            "objective": 99.0,
            "window": {"type": "rolling", "days": 28},
        },
    )
    cloud_fed = healthy["gateways"][-1]
    push(cloud_fed, T0 - timedelta(minutes=60), 60, ok_fast=300, tier="public_cloud", route="public_cloud")
    evaluate(T0)
    release = submitted_and_approved(make_release, users)
    assert cloud_fed.pk not in wave_ids(release, 0)
    rollout.release_step(release_id=release.pk, now=T0)
    release.refresh_from_db()
    ack(wave_ids(release, 0), T0 + timedelta(seconds=10))
    rollout.release_step(release_id=release.pk, now=T0 + timedelta(seconds=20))

    results = run_minutes(release, healthy, push, T0 + timedelta(minutes=1), 3)

    release.refresh_from_db()
    assert results == ["wave:0:baking", "wave:0:baking", "wave:1:delivering"], (
        results,
        release.paused_reason,
    )  # not paused
    measured = GateResult.objects.filter(release=release, gate="canary").order_by("at", "id").last()
    assert measured.outcome == "pass"
    assert measured.evidence["slos_not_applicable"] == [
        {
            "slo": "cloud-latency",
            "tier": "public_cloud",
            "reason": "no gateway of this wave runs on public_cloud",
        }
    ]
    assert "cloud-latency" not in {s["name"] for s in measured.evidence["canary"]["slos"]}


def _bake_wave_one(release, healthy, push, *, canary_per_minute, minutes):
    """Deliver wave 1, then push `minutes` minutes (canary: `canary_per_minute(i)` good answers;
    the rest of the fleet 300) and tick after each; returns the step results."""
    rollout.release_step(release_id=release.pk, now=T0)
    release.refresh_from_db()
    canary = set(wave_ids(release, 0))
    ack(canary, T0 + timedelta(seconds=10))
    rollout.release_step(release_id=release.pk, now=T0 + timedelta(seconds=20))
    results = []
    for i in range(minutes):
        minute = T0 + timedelta(minutes=1 + i)
        for gateway in healthy["gateways"]:
            push(gateway, minute, 1, ok_fast=canary_per_minute(i) if gateway.pk in canary else 300)
        results.append(rollout.release_step(release_id=release.pk, now=minute + timedelta(minutes=1)))
        release.refresh_from_db()
        if release.state != "rolling_out":
            break
    return results


def test_a_quiet_start_of_the_bake_is_not_a_verdict(healthy, make_release, users, push):
    release = submitted_and_approved(make_release, users)
    # 60 events in the first minute (under min_valid_events 100), then normal traffic
    results = _bake_wave_one(
        release, healthy, push, canary_per_minute=lambda i: 60 if i == 0 else 300, minutes=3
    )

    assert results == ["wave:0:baking", "wave:0:baking", "wave:1:delivering"], results
    verdicts = list(
        GateResult.objects.filter(release=release, gate="canary")
        .order_by("at", "id")
        .values_list("outcome", flat=True)
    )
    assert verdicts[0] == "inconclusive" and verdicts[-1] == "pass"


def test_a_bake_that_ends_inconclusive_waits_for_a_person(healthy, make_release, users, push):
    release = submitted_and_approved(make_release, users)
    results = _bake_wave_one(release, healthy, push, canary_per_minute=lambda i: 20, minutes=4)

    # it keeps baking while the evidence may still come, and pauses once the bake time is over
    assert results == ["wave:0:baking", "wave:0:baking", "paused:canary:0"], results
    release.refresh_from_db()
    assert release.state == "paused" and release.paused_stage == "canary:0"
    assert "inconclusive at the end of the bake of wave 1" in release.paused_reason
    assert "canary_traffic" in release.paused_reason
