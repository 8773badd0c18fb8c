"""The rollout tick: waves delivered one by one (bundles, ACKs), each baked under canary analysis,
page-level burn and NACKs rolled back, and rollbacks confirmed once every gateway runs them. Steps
claim the release row (SKIP LOCKED, then a conditional update), so concurrent ticks never
double-advance.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import DomainError, ValidationFailed
from routing.capacity.waves import device_skips
from routing.fleet.services import gateway_set_desired
from routing.models.releases import ModelVersion, Release, ReleaseGateway, ReleaseRollback
from routing.releases import canary, gates, selectors
from routing.releases.bundles import applied_bundles, release_bundle
from routing.releases.canary_analysis import canary_measure, canary_settings
from routing.releases.machine import ADVANCE, APPROVED, CANCEL, COMPLETE, PAUSED, ROLLING_OUT, START
from routing.releases.transitions import (
    SYSTEM,
    enqueue_step,
    gate_problems,
    release_claim,
    release_lock,
    release_pause,
    release_transition,
    rollback_issue,
    store_gate_results,
)
from slo.spec import Problem

logger = logging.getLogger(__name__)

# A wave whose gateways have not all acknowledged after this long waits for a person.
ACK_TIMEOUT_S = 600


def release_tick(*, now: datetime | None = None) -> dict[str, Any]:
    """Advance every open release one step and confirm rollbacks. Idempotent: steps claim the release
    row (SKIP LOCKED, then a conditional update), so concurrent ticks never double-advance."""
    now = now or timezone.now()
    report: dict[str, Any] = {"stepped": {}, "rollbacks_acknowledged": []}
    ids = list(Release.objects.filter(state__in=[APPROVED, ROLLING_OUT, PAUSED]).values_list("pk", flat=True))
    for release_id in ids:
        try:
            report["stepped"][release_id] = release_step(release_id=release_id, now=now)
        except DomainError as exc:
            # a 409 here is another worker winning the claim: harmless, the next tick looks again
            logger.info("release %s step skipped: %s", release_id, exc.message)
            report["stepped"][release_id] = f"skipped: {exc.message}"
        except Exception:  # noqa: BLE001 - one broken release must not stop the others
            logger.exception("release %s step failed; the next tick retries it", release_id)
            report["stepped"][release_id] = "error"
    report["rollbacks_acknowledged"] = rollback_confirm(now=now)
    return report


def releases_step_on_page(sender: Any, services: list[str], **kwargs: Any) -> list[int]:
    """slo's `page_alerts_fired` (after the commit of an evaluation in which page-level burn-rate
    alerts started firing): enqueue a step of every rolling-out (or paused mid-rollout) release of
    those services now, so a burn rollback is issued within seconds of the evaluation instead of at
    the next tick (up to 30 s later). Returns the release ids enqueued."""
    ids = list(
        Release.objects.filter(service__name__in=services, state__in=[ROLLING_OUT, PAUSED])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for release_id in ids:
        enqueue_step(release_id)
    return ids


def rollback_confirm(*, now: datetime) -> list[int]:
    """Mark rollbacks whose every gateway runs its rollback revision; returns their ids."""
    done = []
    for rollback in selectors.rollback_pending_ack():
        revisions = {int(k): v for k, v in rollback.gateway_revisions.items()}
        if all(selectors.gateways_running(revisions=revisions).values()):
            if ReleaseRollback.objects.filter(pk=rollback.pk, acknowledged_at__isnull=True).update(
                acknowledged_at=now
            ):
                audit_record(
                    actor=SYSTEM,
                    action="release_rollback_acknowledged",
                    obj=rollback.release,
                    after={"rollback": rollback.pk, "gateway_revisions": rollback.gateway_revisions},
                )
                done.append(rollback.pk)
    return done


def release_step(*, release_id: int, now: datetime) -> str:
    """One step of one release; returns what happened (for logs and tests)."""
    with transaction.atomic():
        release = release_lock(release_id, skip_locked=True)
        if release is None:
            return "busy"  # another worker holds it
        if release.state == PAUSED:
            if release.paused_from == ROLLING_OUT:
                return _check_burn(release, now) or "paused"
            return "paused"
        if release.state == APPROVED:
            return _begin_wave(release, 0, now)
        if release.state != ROLLING_OUT:
            return "idle"
        triggered = _check_burn(release, now)
        if triggered:
            return triggered
        if release.wave_phase == "delivering":
            return _check_acks(release, now)
        if release.wave_phase == "baking":
            return _bake(release, now)
        return "idle"


def _check_burn(release: Release, now: datetime) -> str | None:
    """Page-level burn on an affected SLO since the rollout began: roll back."""
    from slo.budget.selectors import alert_events

    if release.rollout_started_at is None:
        return None
    event = (
        alert_events(service=release.service.name)
        .filter(
            kind="burn_rate", severity="page", state="firing", at__gte=release.rollout_started_at, at__lte=now
        )
        .order_by("at")
        .first()
    )
    if event is None:
        return None
    evidence = {
        "alert": {
            "slo": event.slo.name if event.slo_id else None,
            "at": event.at.isoformat(),
            "windows": event.windows,
            "evidence": event.evidence,
        }
    }
    rollback_issue(
        release,
        trigger="burn",
        actor=SYSTEM,
        now=now,
        evidence=evidence,
        reason=f"page-level burn on {evidence['alert']['slo']} since {event.at.isoformat()}",
    )
    return "rolled_back:burn"


def _wave_gates(release: Release, wave: int, now: datetime) -> tuple[str, list[gates.GateOutcome]]:
    outcomes, _extra = gates.budget_gates(release=release, now=now)
    stage = f"wave:{wave}"
    if stage in (release.overrides or {}):
        for o in outcomes:
            if o.outcome == gates.INCONCLUSIVE:
                o.evidence["accepted_by"] = release.overrides[stage]
                o.outcome = gates.PASS
    store_gate_results(release, outcomes, stage=stage, now=now)
    if any(o.outcome == gates.FAIL for o in outcomes):
        return gates.FAIL, outcomes
    if any(o.outcome == gates.INCONCLUSIVE for o in outcomes):
        return gates.INCONCLUSIVE, outcomes
    return gates.PASS, outcomes


def _begin_wave(release: Release, wave: int, now: datetime) -> str:
    verdict, outcomes = _wave_gates(release, wave, now)
    failed = [o for o in outcomes if o.outcome == gates.FAIL]
    if verdict == gates.INCONCLUSIVE:
        release_pause(
            release,
            actor=SYSTEM,
            now=now,
            stage=f"wave:{wave}",
            outcomes=[o for o in outcomes if o.outcome == gates.INCONCLUSIVE],
        )
        return f"paused:wave:{wave}"
    if verdict == gates.FAIL:
        problems = "; ".join(p["message"] for p in gate_problems(failed))
        reason = f"gate failed before wave {wave + 1}: {problems}"
        if wave == 0:
            release_transition(
                release,
                event=CANCEL,
                actor=SYSTEM,
                now=now,
                reason=reason,
                finished_at=now,
                evidence={"gates": [{"gate": o.gate, "evidence": o.evidence} for o in failed]},
            )
            return "cancelled:gate"
        rollback_issue(
            release,
            trigger="gate",
            actor=SYSTEM,
            now=now,
            reason=reason,
            evidence={"gates": [{"gate": o.gate, "evidence": o.evidence} for o in failed]},
        )
        return "rolled_back:gate"
    # this wave's gateways and those earlier waves skipped (hot or short of memory): try them again
    candidates = selectors.wave_targets(release_id=release.pk, wave=wave) + selectors.skipped_targets(
        release_id=release.pk, before_wave=wave
    )
    applied = applied_bundles([t.gateway for t in candidates])
    bundles: dict[int, dict[str, Any]] = {}
    for target in candidates:
        bundle, why = release_bundle(release, applied[target.gateway_id][1])
        if bundle is not None:
            bundles[target.gateway_id] = bundle
    skips = device_skips(gateway_ids=[t.gateway_id for t in candidates], bundles=bundles, now=now)
    targets = [t for t in candidates if t.gateway_id not in skips]
    gateways = [t.gateway for t in targets]
    bundles = {gid: b for gid, b in bundles.items() if gid not in skips}
    skipped = [{**skips[t.gateway_id], "name": t.gateway.name} for t in candidates if t.gateway_id in skips]
    retried = [t.gateway_id for t in targets if t.skipped_at is not None]
    event = START if wave == 0 else ADVANCE
    updates: dict[str, Any] = {
        "current_wave": wave,
        "wave_phase": "delivering",
        "wave_started_at": now,
        "bake_started_at": None,
        "analysed_until": None,
        "canary_verdicts": [],
    }
    if wave == 0:
        updates["rollout_started_at"] = now
    try:
        with transaction.atomic():
            if len(bundles) != len(gateways):
                raise ValidationFailed(
                    "invalid bundle",
                    problems=[
                        Problem(f"gateways[{g.pk}]", "no bundle") for g in gateways if g.pk not in bundles
                    ],
                )
            release_transition(
                release,
                event=event,
                actor=SYSTEM,
                now=now,
                reason=f"wave {wave + 1} of {len(release.waves)}: {len(gateways)} gateway(s)"
                + (f", {len(skipped)} skipped (hot or short of memory)" if skipped else ""),
                evidence={"gateways": [g.pk for g in gateways], "skipped": skipped, "retried": retried},
                **updates,
            )
            for entry in skipped:
                ReleaseGateway.objects.filter(release=release, gateway_id=entry["gateway"]).update(
                    skipped_at=now, skip_reason=entry["reason"][:300]
                )
            revisions = gateway_set_desired(
                actor=SYSTEM,
                gateway_ids=list(bundles),
                bundle_for=lambda gateway: bundles[gateway.pk],
                reason=f"release {release.pk} wave {wave + 1}",
                release_id=release.pk,
                now=now,
            )
            by_gateway = {r.gateway_id: r.revision for r in revisions}
            for target in targets:
                revision, bundle = applied[target.gateway_id]
                ReleaseGateway.objects.filter(pk=target.pk).update(
                    wave=wave,  # a retried skip joins the wave that delivers it
                    skipped_at=None,
                    skip_reason="",
                    baseline_revision=revision,
                    baseline_bundle=bundle,
                    release_revision=by_gateway[target.gateway_id],
                    touched_at=now,
                )
    except ValidationFailed as exc:
        # The bundles no longer validate (a validator or a document changed): stop, with the reason.
        release.refresh_from_db()
        reason = f"wave {wave + 1} could not be delivered: {exc.message}"
        store_gate_results(
            release,
            [gates.GateOutcome("documents", gates.FAIL, {"problems": exc.problems[:20]})],
            stage=f"wave:{wave}",
            now=now,
        )
        if wave == 0:
            release_transition(release, event=CANCEL, actor=SYSTEM, now=now, reason=reason, finished_at=now)
            return "cancelled:documents"
        rollback_issue(
            release,
            trigger="gate",
            actor=SYSTEM,
            now=now,
            reason=reason,
            evidence={"problems": exc.problems[:20]},
        )
        return "rolled_back:documents"
    return f"wave:{wave}:delivering"


def _check_acks(release: Release, now: datetime) -> str:
    targets = selectors.wave_targets(release_id=release.pk, wave=release.current_wave)
    nacked = [
        t
        for t in targets
        if t.gateway.last_nack_revision is not None and t.gateway.last_nack_revision == t.release_revision
    ]
    if nacked:
        evidence = {
            "nacks": [
                {
                    "gateway": t.gateway_id,
                    "revision": t.release_revision,
                    "error": t.gateway.last_nack_error[:500],
                }
                for t in nacked
            ]
        }
        rollback_issue(
            release,
            trigger="nack",
            actor=SYSTEM,
            now=now,
            evidence=evidence,
            reason=f"{len(nacked)} gateway(s) rejected the release's bundle",
        )
        return "rolled_back:nack"
    waiting = [
        t.gateway_id
        for t in targets
        if t.gateway.applied_revision is None
        or t.release_revision is None
        or t.gateway.applied_revision < t.release_revision
    ]
    if not waiting:
        store_gate_results(
            release,
            [
                gates.GateOutcome(
                    "delivery",
                    gates.PASS,
                    {
                        "gateways": {str(t.gateway_id): t.release_revision for t in targets},
                        "acknowledged_after_s": (now - release.wave_started_at).total_seconds()
                        if release.wave_started_at
                        else None,
                    },
                )
            ],
            stage=f"wave:{release.current_wave}",
            now=now,
        )
        release_claim(release, now, wave_phase="baking", bake_started_at=now, analysed_until=now)
        return _bake(release, now)
    started = release.wave_started_at or now
    if (now - started).total_seconds() > ACK_TIMEOUT_S:
        stage = f"ack:{release.current_wave}"
        release_pause(
            release,
            actor=SYSTEM,
            now=now,
            stage=stage,
            reason=f"{len(waiting)} gateway(s) did not acknowledge within {ACK_TIMEOUT_S} s: {waiting[:20]}",
        )
        return f"paused:{stage}"
    return f"wave:{release.current_wave}:waiting_for_acks:{len(waiting)}"


def _bake(release: Release, now: datetime) -> str:
    wave = release.current_wave
    criteria, _window, _lag = canary_settings(release=release)
    result = canary_measure(release=release, now=now)
    verdicts = list(release.canary_verdicts)
    accepted = "accepted" in verdicts
    if result is not None:
        measurement, info = result
        verdicts.append(measurement.verdict)
        store_gate_results(
            release,
            [gates.GateOutcome("canary", measurement.verdict, info["evidence"])],
            stage=f"canary:{wave}",
            now=now,
        )
        release_claim(release, now, canary_verdicts=verdicts, analysed_until=info["stop"])
        measured = [v for v in verdicts if v in canary.VERDICTS]
        verdict = canary.overall(measured, criteria)
        if verdict == canary.FAIL:
            rollback_issue(
                release,
                trigger="canary",
                actor=SYSTEM,
                now=now,
                reason=f"canary analysis failed in wave {wave + 1} ({criteria.failure_limit} failing "
                f"measurements in a row)",
                evidence={"measurement": info["evidence"]},
            )
            return "rolled_back:canary"
    # An inconclusive measurement (too few events yet: the first minutes of a bake, a quiet SLO) is
    # not a verdict: the window fills as the bake goes on. Only a bake that ends inconclusive waits
    # for a person.
    bake_s = release.waves[wave]["bake_s"]
    if release.bake_started_at is None or (now - release.bake_started_at).total_seconds() < bake_s:
        return f"wave:{wave}:baking"
    measured = [v for v in verdicts if v in canary.VERDICTS]
    if measured and canary.overall(measured, criteria) == canary.INCONCLUSIVE and not accepted:
        last = (
            release.gate_results.filter(gate="canary", stage=f"canary:{wave}").order_by("-at", "-id").first()
        )
        checks = (last.evidence or {}).get("checks", []) if last is not None else []
        release_pause(
            release,
            actor=SYSTEM,
            now=now,
            stage=f"canary:{wave}",
            reason=f"canary analysis inconclusive at the end of the bake of wave {wave + 1}: "
            + (
                "; ".join(
                    f"{c['name']}: {c['detail']}" for c in checks if c["outcome"] == canary.INCONCLUSIVE
                )
                or "too little telemetry"
            ),
        )
        return f"paused:canary:{wave}"
    if bake_s > 0 and not measured and not accepted:
        release_pause(
            release,
            actor=SYSTEM,
            now=now,
            stage=f"canary:{wave}",
            reason=f"no canary telemetry during the bake of wave {wave + 1}",
        )
        return f"paused:canary:{wave}"
    if measured and measured[-1] == canary.FAIL:
        return f"wave:{wave}:baking"  # one failure: not enough to roll back, not good enough to advance
    if wave + 1 >= len(release.waves):
        release_transition(
            release,
            event=COMPLETE,
            actor=SYSTEM,
            now=now,
            finished_at=now,
            wave_phase="",
            reason=f"all {len(release.waves)} wave(s) delivered and baked",
        )
        if release.model_version_id:
            ModelVersion.objects.filter(pk=release.model_version_id, deployed_at__isnull=True).update(
                deployed_at=now
            )
        return "completed"
    return _begin_wave(release, wave + 1, now)
