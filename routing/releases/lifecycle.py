"""A release's life by people's hands: create (and preview), submit (targets, waves and gates),
approve or reject (four eyes), resume after an inconclusive verdict, cancel and roll back. Each write
is one transaction with its transition row(s) and audit events (routing.releases.transitions).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import Conflict, Forbidden, IllegalTransition, NotFound, ValidationFailed
from controlplane.roles import APPROVER, has_role
from routing.models.releases import ModelVersion, Release, ReleaseApproval, ReleaseGateway
from routing.releases import gates, machine, selectors
from routing.releases.bundles import release_bundles
from routing.releases.inputs import ReleaseDraftInput, parse_partial, wave_plan_problems
from routing.releases.machine import (
    APPROVE,
    APPROVED,
    CANCEL,
    DRAFT,
    PAUSED,
    PENDING_APPROVAL,
    REJECT,
    RESUME,
    ROLLING_OUT,
    SUBMIT,
    TransitionRefused,
    next_state,
)
from routing.releases.transitions import (
    SYSTEM,
    actor_name,
    actor_user,
    enqueue_step,
    gate_problems,
    reason_required,
    release_claim,
    release_locked_or_404,
    release_pause,
    release_transition,
    release_view,
    rollback_issue,
    store_gate_results,
)
from slo.models import Service
from slo.spec import Problem


def _document_version(kind_key: str, service: Service, number: int | None, problems: list[Problem]) -> Any:
    """The service's document version by number; a release ships only versions that passed their
    own review (`approved`): a draft cannot ride along, a retired one is withdrawn."""
    from routing.models.documents import APPROVED, CacheConfigVersion, RoutingPolicyVersion

    if number is None:
        return None
    model = RoutingPolicyVersion if kind_key == "routing_policy_version" else CacheConfigVersion
    row = model.objects.select_related("line__service").filter(line__service=service, version=number).first()
    if row is None:
        problems.append(Problem(kind_key, f"{service.name} has no version {number}"))
    elif row.state != APPROVED:
        problems.append(
            Problem(
                kind_key,
                f"version {number} is {row.state}: a release ships only approved versions "
                "(an approver other than its author approves it first)",
            )
        )
    return row


def _service(ref: str | int | None) -> Service | None:
    if isinstance(ref, str):
        return Service.objects.filter(name=ref).first() if ref else None
    return Service.objects.filter(pk=ref).first() if ref is not None else None


def _draft_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a draft release from a create body (`ReleaseDraftInput`), or a 400 naming every
    problem: those of its shape and those only the database can find."""
    body, problems = parse_partial(ReleaseDraftInput, data)
    service = _service(body.service)
    if service is None:
        if not any(p.path == "service" for p in problems):
            problems.append(Problem("service", "unknown service"))
        raise ValidationFailed("invalid release", problems=problems)
    reason = body.reason.strip()
    if body.kind in ("hotfix", "rollback") and not reason:
        problems.append(
            Problem("reason", f"a {body.kind} release needs a reason (it may pass a budget freeze)")
        )
    policy = _document_version("routing_policy_version", service, body.routing_policy_version, problems)
    cache = _document_version("cache_config_version", service, body.cache_config_version, problems)
    model = None
    if body.model_version is not None:
        model = ModelVersion.objects.filter(pk=body.model_version).first()
        if model is None:
            problems.append(Problem("model_version", "unknown model version id"))
        elif model.service_id != service.pk:
            problems.append(Problem("model_version", f"belongs to another service, not {service.name}"))
    if isinstance(data, Mapping) and all(
        data.get(k) is None for k in ("routing_policy_version", "cache_config_version", "model_version")
    ):
        problems.append(
            Problem("", "a release needs a routing policy version, a cache config version or a model version")
        )
    if body.waves is None:
        waves = [{"percent": float(percent), "bake_s": bake_s} for percent, bake_s in machine.DEFAULT_WAVES]
    else:
        waves, order_problems = wave_plan_problems(body.waves)
        problems += order_problems
    if problems:
        raise ValidationFailed("invalid release", problems=problems)
    return {
        "service": service,
        "kind": body.kind,
        "title": body.title,
        "reason": reason,
        "routing_policy_version": policy,
        "cache_config_version": cache,
        "model_version": model,
        "target_selector": body.target.selector() if body.target is not None else {},
        "wave_plan": waves,
        "confirm": body.confirm_wave_sizes,
    }


def _wave_size_problem(preview: dict[str, Any]) -> Problem | None:
    """A first wave bigger than asked (beyond rounding) that nobody confirmed for this many gateways."""
    if not preview["first_wave_larger_than_requested"] or preview["confirmed"]:
        return None
    first = preview["waves"][0]
    return Problem(
        "waves[0].percent",
        (
            f"{first['requested_percent']:g}% of {preview['gateways']} gateways is {first['gateways']} gateway(s), "
            f"{first['percent']:g}% of them (a wave is whole gateways, at least one): ask for {first['percent']:g}%, "
            "or send confirm_wave_sizes: true to accept it"
        ),
    )


def release_preview(
    *, data: Mapping[str, Any], predict_gates: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """What a create body would give, written nowhere: the gateways its target matches now and the
    effective size of every wave, and whether the first wave needs a confirmation. With
    `predict_gates`, also what the submission gates would answer now (`gates`: the same gate
    functions `release_submit` runs, on the same gateways; nothing is stored)."""
    fields = _draft_fields(data)
    confirm = fields.pop("confirm")
    draft = Release(**fields)
    gateways = selectors.resolve_targets(release=draft)
    preview = selectors.wave_preview(release=draft, gateways=gateways)
    preview["confirmed"] = preview["first_wave_larger_than_requested"] and confirm
    problem = _wave_size_problem(preview)
    preview["problems"] = [problem.as_dict()] if problem else []
    if predict_gates:
        outcomes, _extra = submission_gates(draft, gateways, now=now or timezone.now())
        preview["gates"] = [{"gate": o.gate, "outcome": o.outcome, "evidence": o.evidence} for o in outcomes]
    return preview


def submission_gates(
    release: Release, gateways: list[Any], *, now: datetime
) -> tuple[list[gates.GateOutcome], int]:
    """The gates a submission runs, in order (documents with every target's new bundle, error
    budget, paging, data quality, simulation), and the extra approvals the budget asks for. Reads
    only: the caller stores the outcomes."""
    bundles, missing = release_bundles(release, gateways)
    outcomes = [gates.gate_documents(release=release, bundles=bundles, missing=missing)]
    budget_outcomes, extra = gates.budget_gates(release=release, now=now)
    outcomes += budget_outcomes
    outcomes.append(gates.gate_simulation(release=release, now=now))
    return outcomes, extra


def release_create(*, actor: Any, data: Mapping[str, Any], now: datetime | None = None) -> Release:
    """A draft release. Targets and waves are fixed when it is submitted.

    `{"service", "kind": normal|hotfix|rollback, "title", "reason", "routing_policy_version",
    "cache_config_version", "model_version" (registry id), "target": {"tier", "region", "labels",
    "gateways"}, "waves": [{"percent", "bake_s"}], "confirm_wave_sizes"}`. Hotfix and rollback
    releases need a reason: they are the only changes allowed through a budget freeze. Document
    versions must be approved. A first wave bigger than asked on the gateways the target matches
    now (whole gateways, at least one) is refused unless `confirm_wave_sizes` is true.
    """
    now = now or timezone.now()
    fields = _draft_fields(data)
    confirm = fields.pop("confirm")
    draft = Release(**fields)
    preview = selectors.wave_preview(release=draft)
    if not confirm:
        problem = _wave_size_problem(preview)
        if problem is not None:
            raise ValidationFailed("invalid release", problems=[problem], extra={"wave_preview": preview})
    with transaction.atomic():
        release = Release.objects.create(
            **fields,
            author=actor_user(actor),
            author_name=actor_name(actor)[:150],
            created_at=now,
            updated_at=now,
            wave_sizes_confirmed_for=preview["gateways"] if confirm else None,
        )
        audit_record(actor=actor, action="create", obj=release, after=release_view(release))
    return release


def _busy_gateways(gateway_ids: list[int], *, exclude_release: int) -> dict[int, int]:
    """gateway id -> id of another open release that targets it."""
    rows = (
        ReleaseGateway.objects.filter(
            gateway_id__in=gateway_ids,
            release__state__in=[PENDING_APPROVAL, APPROVED, ROLLING_OUT, PAUSED],
        )
        .exclude(release_id=exclude_release)
        .values_list("gateway_id", "release_id")
    )
    return dict(rows)


def _required_approvals(release: Release, extra: int) -> int:
    settings_row = selectors.release_settings_for(service_id=release.service_id)
    return max(1, settings_row.required_approvals) + max(0, extra)


def release_submit(
    *, actor: Any, release_id: int, confirm_wave_sizes: bool = False, now: datetime | None = None
) -> Release:
    """Resolve the targets, plan the waves and run the submission gates, storing every result.

    A first wave bigger than asked on the resolved gateways is refused (400, the release stays a
    draft) unless it was confirmed for this many gateways, at creation or with `confirm_wave_sizes`.
    A failing gate refuses the submission (409 with the evidence; the release stays a draft). An
    inconclusive one (no data) submits the release and pauses it at once for a person.
    """
    now = now or timezone.now()
    release = selectors.release_queryset().filter(pk=release_id).first()
    if release is None:
        raise NotFound("no such release")
    try:
        next_state(release.state, SUBMIT)
    except TransitionRefused as exc:
        raise IllegalTransition(exc.reason, extra={"state": release.state, "event": SUBMIT}) from None
    gateways = selectors.resolve_targets(release=release)
    if not gateways:
        raise ValidationFailed(
            "invalid release", problems=[Problem("target", "matches no gateway of the service")]
        )
    busy = _busy_gateways([g.pk for g in gateways], exclude_release=release.pk)
    if busy:
        raise Conflict(
            "gateways are in another open release",
            problems=[Problem(f"target.gateways[{g}]", f"in release {r}") for g, r in sorted(busy.items())],
        )
    confirmed_for = len(gateways) if confirm_wave_sizes else release.wave_sizes_confirmed_for
    preview = selectors.wave_preview(release=release, confirmed_for=confirmed_for, gateways=gateways)
    problem = _wave_size_problem(preview)
    if problem is not None:
        raise ValidationFailed("invalid release", problems=[problem], extra={"wave_preview": preview})
    plan = [(w["percent"], w["bake_s"]) for w in release.wave_plan]
    ranges = machine.plan_waves(len(gateways), plan)
    kept = [size for size in machine.wave_sizes(len(gateways), plan) if not size.dropped]
    waves = [
        {
            "percent": size.percent,
            "requested_percent": size.requested_percent,
            "bake_s": int(bake_s),
            "gateway_ids": [g.pk for g in gateways[start:stop]],
        }
        for (start, stop, bake_s), size in zip(ranges, kept, strict=True)
    ]
    outcomes, extra = submission_gates(release, gateways, now=now)
    failed = [o for o in outcomes if o.outcome == gates.FAIL]
    inconclusive = [o for o in outcomes if o.outcome == gates.INCONCLUSIVE]
    with transaction.atomic():
        locked = release_locked_or_404(release.pk)
        if locked.lock_version != release.lock_version or locked.state != DRAFT:
            raise Conflict("the release changed meanwhile; reload it and retry")
        store_gate_results(locked, outcomes, stage="submission", now=now)
        if failed:
            audit_record(
                actor=actor,
                action="release_submit_refused",
                obj=locked,
                after={"failed_gates": [o.gate for o in failed]},
            )
        else:
            ReleaseGateway.objects.bulk_create(
                [
                    ReleaseGateway(release=locked, gateway_id=gateway_id, wave=index)
                    for index, wave in enumerate(waves)
                    for gateway_id in wave["gateway_ids"]
                ]
            )
            release_transition(
                locked,
                event=SUBMIT,
                actor=actor,
                now=now,
                reason=locked.reason,
                evidence={
                    "gates": {o.gate: o.outcome for o in outcomes},
                    "gateways": len(gateways),
                    "waves": [len(w["gateway_ids"]) for w in waves],
                },
                waves=waves,
                required_approvals=_required_approvals(locked, extra),
                submitted_at=now,
                wave_sizes_confirmed_for=confirmed_for,
            )
            if inconclusive:
                release_pause(locked, actor=SYSTEM, now=now, stage="submission", outcomes=inconclusive)
    if failed:
        raise Conflict(
            "the release is refused by its gates",
            problems=gate_problems(failed),
            extra={
                "gates": [{"gate": o.gate, "outcome": o.outcome, "evidence": o.evidence} for o in outcomes]
            },
        )
    return selectors.release_get(release_id=release.pk)


def _content_four_eyes(release: Release, actor: Any, doing: str) -> None:
    """Nobody who wrote a document version (or registered the model version) the release ships
    decides on it: their own review would be the only one."""
    wrote = selectors.content_authored_by(release=release, user=actor)
    if wrote:
        raise Forbidden(
            f"you wrote {', '.join(wrote)}, which this release ships: someone else must {doing} (four eyes)",
            problems=[Problem("", f"author of {what}") for what in wrote],
        )


def _unreviewed_versions(release: Release) -> list[Problem]:
    """Shipped document versions that are not (or no longer) approved."""
    from routing.models.documents import APPROVED

    out = []
    for key, version in (
        ("routing_policy_version", release.routing_policy_version),
        ("cache_config_version", release.cache_config_version),
    ):
        if version is not None:
            version.refresh_from_db(fields=["state"])
            if version.state != APPROVED:
                out.append(
                    Problem(key, f"version {version.version} is {version.state}: only approved versions ship")
                )
    return out


def _decide(actor: Any, release_id: int, decision: str, comment: Any, now: datetime) -> Release:
    comment = reason_required(comment, "comment")
    if not has_role(actor, APPROVER):
        raise Forbidden("only approvers decide on releases")
    with transaction.atomic():
        release = release_locked_or_404(release_id)
        if release.author_id is not None and release.author_id == getattr(actor, "pk", None):
            raise Forbidden("the author of a release cannot approve or reject it (four eyes)")
        _content_four_eyes(release, actor, "approve or reject it")
        event = APPROVE if decision == "approve" else REJECT
        if release.state != PENDING_APPROVAL:
            raise IllegalTransition(
                f"cannot {decision} a release that is {release.state}",
                extra={"state": release.state, "event": event},
            )
        unreviewed = _unreviewed_versions(release) if decision == "approve" else []
        if unreviewed:
            raise Conflict("the release ships document versions that are not approved", problems=unreviewed)
        try:
            with transaction.atomic():
                ReleaseApproval.objects.create(
                    release=release,
                    approver=actor,
                    approver_name=actor_name(actor),
                    decision=decision,
                    comment=comment,
                    at=now,
                )
        except IntegrityError:
            raise Conflict("you already decided on this release") from None
        audit_record(
            actor=actor,
            action=f"release_{decision}_vote",
            obj=release,
            after={"comment": comment},
            note=comment[:500],
        )
        approvals = selectors.approvals_count(release_id=release.pk)
        if decision == "reject":
            release_transition(
                release,
                event=REJECT,
                actor=actor,
                now=now,
                reason=comment,
                finished_at=now,
                evidence={"approvals": approvals, "required": release.required_approvals},
            )
        elif approvals >= release.required_approvals:
            release_transition(
                release,
                event=APPROVE,
                actor=actor,
                now=now,
                reason=comment,
                evidence={"approvals": approvals, "required": release.required_approvals},
            )
            transaction.on_commit(lambda: enqueue_step(release.pk))
        else:
            # Not enough approvals yet: the vote is stored, the state stays. Bump the claim so a
            # concurrent vote cannot be counted against a stale total.
            release_claim(release, now)
    return selectors.release_get(release_id=release_id)


def release_approve(*, actor: Any, release_id: int, comment: Any, now: datetime | None = None) -> Release:
    """One approval (approver role, never the author, with a comment). The last one needed approves."""
    return _decide(actor, release_id, "approve", comment, now or timezone.now())


def release_reject(*, actor: Any, release_id: int, comment: Any, now: datetime | None = None) -> Release:
    """One rejection stops the release."""
    return _decide(actor, release_id, "reject", comment, now or timezone.now())


def release_resume(*, actor: Any, release_id: int, reason: Any, now: datetime | None = None) -> Release:
    """A person's decision to go on after an inconclusive verdict; it is recorded as an override of
    that stage, so the same missing data does not pause the release again."""
    now = now or timezone.now()
    reason = reason_required(reason)
    if not has_role(actor, APPROVER):
        raise Forbidden("only approvers may resume a paused release")
    with transaction.atomic():
        release = release_locked_or_404(release_id)
        if release.author_id is not None and release.author_id == getattr(actor, "pk", None):
            raise Forbidden("the author of a release cannot overrule its gates (four eyes)")
        _content_four_eyes(release, actor, "decide whether it goes on")
        stage = release.paused_stage
        overrides = dict(release.overrides or {})
        if stage:
            overrides[stage] = {"by": actor_name(actor), "reason": reason, "at": now.isoformat()}
        updates: dict[str, Any] = {
            "paused_from": "",
            "paused_reason": "",
            "paused_stage": "",
            "overrides": overrides,
        }
        if stage.startswith("ack:"):
            updates["wave_started_at"] = now  # restart the ACK timer
        if stage.startswith("canary:") or stage.startswith("wave:"):
            updates["canary_verdicts"] = [*release.canary_verdicts, "accepted"]
        release_transition(
            release,
            event=RESUME,
            actor=actor,
            now=now,
            reason=reason,
            evidence={"stage": stage, "paused_reason": release.paused_reason},
            **updates,
        )
        if release.state in (APPROVED, ROLLING_OUT):
            transaction.on_commit(lambda: enqueue_step(release.pk))
    return selectors.release_get(release_id=release_id)


def release_cancel(*, actor: Any, release_id: int, reason: Any, now: datetime | None = None) -> Release:
    """Stop a release that has not touched any gateway. Once gateways run it, roll it back instead."""
    now = now or timezone.now()
    reason = reason_required(reason)
    with transaction.atomic():
        release = release_locked_or_404(release_id)
        if ReleaseGateway.objects.filter(release=release, release_revision__isnull=False).exists():
            raise Conflict(
                "gateways already run this release: roll it back instead",
                extra={"state": release.state, "event": CANCEL},
            )
        release_transition(release, event=CANCEL, actor=actor, now=now, reason=reason, finished_at=now)
    return selectors.release_get(release_id=release_id)


def release_rollback(
    *,
    actor: Any,
    release_id: int,
    reason: Any,
    trigger: str = "manual",
    evidence: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Release:
    """Put every gateway the release touched back on its last-known-good bundle, delivered first.
    Allowed during a budget freeze (a rollback is always allowed)."""
    now = now or timezone.now()
    reason = reason_required(reason)
    with transaction.atomic():
        release = release_locked_or_404(release_id)
        rollback_issue(release, trigger=trigger, actor=actor, reason=reason, evidence=evidence or {}, now=now)
    return selectors.release_get(release_id=release_id)
