"""The primitives every release write goes through: the claim, the transition, the pause and the
rollback, with their transition rows and audit events. Lifecycle (people's decisions), rollout (the
tick) and the Alertmanager webhook all change a release through these.

Every state change goes through `release_transition`: the pure table (machine.py) says whether the
edge exists, then a conditional update on (state, lock_version) claims it. Zero rows updated means
another worker or person changed the release first: the caller gets a 409 (people) or skips (tick).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from controlplane.audit import audit_record
from controlplane.errors import Conflict, IllegalTransition, NotFound, ValidationFailed
from routing.fleet.services import gateway_set_desired
from routing.models.releases import GateResult, Release, ReleaseRollback, ReleaseTransition
from routing.releases import gates, machine, selectors
from routing.releases.machine import PAUSE, PAUSED, ROLLBACK, TransitionRefused, next_state
from slo.spec import Problem

logger = logging.getLogger(__name__)


SYSTEM = "system:release-tick"


def actor_name(actor: Any) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return str(actor or "system")


def actor_user(actor: Any) -> Any:
    return (
        actor
        if actor is not None
        and getattr(actor, "is_authenticated", False)
        and getattr(actor, "pk", None) is not None
        and not isinstance(actor.pk, str)
        else None
    )


def release_view(release: Release) -> dict[str, Any]:
    """The audit snapshot of a release."""
    return {
        "id": release.pk,
        "service": release.service.name,
        "kind": release.kind,
        "state": release.state,
        "reason": release.reason,
        "routing_policy_version": getattr(release.routing_policy_version, "version", None),
        "cache_config_version": getattr(release.cache_config_version, "version", None),
        "model_version": release.model_version.label if release.model_version_id else None,
        "target_selector": release.target_selector,
        "wave_plan": release.wave_plan,
        "current_wave": release.current_wave,
        "wave_phase": release.wave_phase,
    }


def release_lock(release_id: int, *, skip_locked: bool = False) -> Release | None:
    queryset = Release.objects.select_for_update(skip_locked=skip_locked, of=("self",)).select_related(
        "service", "routing_policy_version", "cache_config_version", "model_version"
    )
    return queryset.filter(pk=release_id).first()


def release_locked_or_404(release_id: int) -> Release:
    release = release_lock(release_id)
    if release is None:
        raise NotFound("no such release")
    return release


def release_claim(release: Release, now: datetime, **updates: Any) -> None:
    """Conditional update on (state, lock_version): the claim of every change to a release."""
    fields = {"lock_version": release.lock_version + 1, "updated_at": now, **updates}
    claimed = Release.objects.filter(
        pk=release.pk, state=release.state, lock_version=release.lock_version
    ).update(**fields)
    if claimed != 1:
        # Nothing got updated: another worker or person changed the release first.
        raise Conflict("the release changed meanwhile; reload it and retry")
    for key, value in fields.items():
        setattr(release, key, value)


def release_transition(
    release: Release,
    *,
    event: str,
    actor: Any,
    now: datetime,
    reason: str = "",
    evidence: dict[str, Any] | None = None,
    **updates: Any,
) -> str:
    try:
        target = next_state(release.state, event, paused_from=release.paused_from or None)
    except TransitionRefused as exc:
        raise IllegalTransition(
            exc.reason,
            extra={
                "state": release.state,
                "event": event,
                "allowed_events": machine.allowed_events(
                    release.state, paused_from=release.paused_from or None
                ),
            },
        ) from None
    source = release.state
    fields = dict(updates)
    _claim_state(release, target, now, **fields)
    ReleaseTransition.objects.create(
        release=release,
        from_state=source,
        to_state=target,
        event=event,
        wave=release.current_wave if release.current_wave >= 0 else None,
        actor=actor_user(actor),
        actor_name=actor_name(actor)[:150],
        at=now,
        reason=reason,
        evidence=evidence or {},
    )
    audit_record(
        actor=actor,
        action=f"release_{event}",
        obj=release,
        before={"state": source},
        after={"state": target, "wave": release.current_wave, "reason": reason},
        note=reason[:500],
    )
    return target


def _claim_state(release: Release, target: str, now: datetime, **updates: Any) -> None:
    fields = {"state": target, "lock_version": release.lock_version + 1, "updated_at": now, **updates}
    claimed = Release.objects.filter(
        pk=release.pk, state=release.state, lock_version=release.lock_version
    ).update(**fields)
    if claimed != 1:
        raise Conflict("the release changed meanwhile; reload it and retry")
    for key, value in fields.items():
        setattr(release, key, value)


def store_gate_results(
    release: Release, outcomes: list[gates.GateOutcome], *, stage: str, now: datetime
) -> None:
    GateResult.objects.bulk_create(
        [
            GateResult(
                release=release, gate=o.gate, stage=stage, outcome=o.outcome, evidence=o.evidence, at=now
            )
            for o in outcomes
        ]
    )


def reason_required(reason: Any, path: str = "reason") -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("invalid input", problems=[Problem(path, "required: say why")])
    return reason.strip()[:2000]


def gate_problems(outcomes: list[gates.GateOutcome]) -> list[dict[str, str]]:
    out = []
    for o in outcomes:
        if o.outcome == gates.FAIL:
            detail = (
                o.evidence.get("reason")
                or "; ".join(p["message"] for p in o.evidence.get("problems", [])[:3])
                or "failed"
            )
            if o.gate == "paging":
                detail = "SLOs paging: " + ", ".join(o.evidence.get("paging_slos", []))
            out.append({"path": f"gates.{o.gate}", "message": detail})
    return out


def release_pause(
    release: Release,
    *,
    actor: Any,
    now: datetime,
    stage: str,
    outcomes: list[gates.GateOutcome] | None = None,
    reason: str = "",
) -> None:
    reason = reason or "waiting for a person: " + "; ".join(
        f"{o.gate} inconclusive ({o.evidence.get('reason') or 'see evidence'})" for o in outcomes or []
    )
    release_transition(
        release,
        event=PAUSE,
        actor=actor,
        now=now,
        reason=reason,
        evidence={
            "stage": stage,
            "gates": [{"gate": o.gate, "evidence": o.evidence} for o in outcomes or []],
        },
        paused_from=release.state,
        paused_reason=reason,
        paused_stage=stage,
    )


def rollback_issue(
    release: Release, *, trigger: str, actor: Any, reason: str, evidence: dict[str, Any], now: datetime
) -> ReleaseRollback:
    touched = selectors.touched_targets(release_id=release.pk)
    if release.state == PAUSED and not touched:
        raise IllegalTransition(
            "nothing to roll back: no gateway runs this release yet; cancel it instead",
            extra={"state": release.state, "event": ROLLBACK},
        )
    bundles: dict[int, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for target in touched:
        if target.baseline_bundle is None:
            skipped[str(target.gateway_id)] = "no last-known-good: it ran no revision before the release"
        else:
            bundles[target.gateway_id] = target.baseline_bundle
    release_transition(
        release,
        event=ROLLBACK,
        actor=actor,
        now=now,
        reason=reason,
        evidence={"trigger": trigger, **evidence},
        finished_at=now,
        wave_phase="",
    )
    revisions = []
    if bundles:
        # validate=False: the last-known-good ran on these gateways; a validator change since must
        # not keep a burning release in place.
        revisions = gateway_set_desired(
            actor=actor if actor_user(actor) else f"{SYSTEM}:{trigger}",
            gateway_ids=list(bundles),
            bundle_for=lambda gateway: bundles[gateway.pk],
            reason=f"rollback of release {release.pk}: {reason}"[:300],
            priority="rollback",
            release_id=release.pk,
            validate=False,
            now=now,
        )
    rollback = ReleaseRollback.objects.create(
        release=release,
        trigger=trigger,
        actor_name=actor_name(actor)[:150],
        reason=reason,
        evidence=evidence,
        gateway_revisions={str(r.gateway_id): r.revision for r in revisions},
        skipped=skipped,
        at=now,
        acknowledged_at=None if revisions else now,
    )
    audit_record(
        actor=actor,
        action="release_rollback_issued",
        obj=release,
        after={"trigger": trigger, "gateway_revisions": rollback.gateway_revisions, "skipped": skipped},
        note=reason[:500],
    )
    return rollback


def enqueue_step(release_id: int) -> None:
    try:
        from routing.tasks.releases import release_step_task

        release_step_task.delay(release_id)
    except Exception:  # noqa: BLE001 - the periodic tick finds the release anyway
        logger.warning(
            "could not enqueue release step %s; the periodic tick will pick it up", release_id, exc_info=True
        )
