"""Writes for releases: create, submit (gates), approve/reject, pause/resume, cancel, the rollout
tick (waves, ACKs, canary analysis) and rollback. Each write is one transaction with its transition
row(s) and audit events.

Every state change goes through `_transition`: the pure table (machine.py) says whether the edge
exists, then a conditional update on (state, lock_version) claims it. Zero rows updated means
another worker or person changed the release first: the caller gets a 409 (people) or skips (tick).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from controlplane.audit import audit_record
from controlplane.errors import (
    Conflict,
    DomainError,
    Forbidden,
    IllegalTransition,
    NotFound,
    ValidationFailed,
)
from controlplane.roles import APPROVER, has_role
from routing.fleet.labels import LABEL_KEY_RULE, label_key_ok
from routing.fleet.services import gateway_set_desired
from routing.models.fleet import Gateway, GatewayRevision
from routing.models.releases import (
    RELEASE_KINDS,
    GateResult,
    ModelVersion,
    Release,
    ReleaseApproval,
    ReleaseGateway,
    ReleaseRollback,
    ReleaseSettings,
    ReleaseTransition,
    WebhookSecret,
)
from routing.releases import alerts, canary, gates, machine, selectors
from routing.releases.machine import (
    ADVANCE,
    APPROVE,
    APPROVED,
    CANCEL,
    COMPLETE,
    DRAFT,
    PAUSE,
    PAUSED,
    PENDING_APPROVAL,
    REJECT,
    RESUME,
    ROLLBACK,
    ROLLING_OUT,
    START,
    SUBMIT,
    TransitionRefused,
    next_state,
)
from slo.models import Service, Slo
from slo.spec import Problem

logger = logging.getLogger(__name__)

SYSTEM = "system:release-tick"
# A wave whose gateways have not all acknowledged after this long waits for a person.
ACK_TIMEOUT_S = 600
MAX_WAVES = 10
MAX_BAKE_S = 7 * 86_400
# Canary analysis defaults beyond the pure criteria: minutes per measurement, and how long to wait
# for gateways to push a finished minute before it is analysed.
ANALYSIS_WINDOW_MINUTES = 5
ANALYSIS_LAG_MINUTES = 2
WEBHOOK_SECRET_PREFIX = "amw_"


# -- helpers ------------------------------------------------------------------------------------


def _actor_name(actor: Any) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return str(actor or "system")


def _user(actor: Any) -> Any:
    return actor if actor is not None and getattr(actor, "is_authenticated", False) and getattr(
        actor, "pk", None) is not None and not isinstance(actor.pk, str) else None


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


def _lock(release_id: int, *, skip_locked: bool = False) -> Release | None:
    queryset = Release.objects.select_for_update(skip_locked=skip_locked, of=("self",)).select_related(
        "service", "routing_policy_version", "cache_config_version", "model_version"
    )
    return queryset.filter(pk=release_id).first()


def _locked_or_404(release_id: int) -> Release:
    release = _lock(release_id)
    if release is None:
        raise NotFound("no such release")
    return release


def _claim(release: Release, now: datetime, **updates: Any) -> None:
    """Conditional update on (state, lock_version): the claim of every change to a release."""
    fields = {"lock_version": release.lock_version + 1, "updated_at": now, **updates}
    claimed = Release.objects.filter(pk=release.pk, state=release.state, lock_version=release.lock_version).update(
        **fields
    )
    if claimed != 1:
        # Nothing got updated: another worker or person changed the release first.
        raise Conflict("the release changed meanwhile; reload it and retry")
    for key, value in fields.items():
        setattr(release, key, value)


def _transition(
    release: Release, *, event: str, actor: Any, now: datetime, reason: str = "",
    evidence: dict[str, Any] | None = None, **updates: Any,
) -> str:
    try:
        target = next_state(release.state, event, paused_from=release.paused_from or None)
    except TransitionRefused as exc:
        raise IllegalTransition(
            exc.reason, extra={"state": release.state, "event": event,
                               "allowed_events": machine.allowed_events(release.state,
                                                                         paused_from=release.paused_from or None)},
        ) from None
    source = release.state
    fields = dict(updates)
    _claim_state(release, target, now, **fields)
    ReleaseTransition.objects.create(
        release=release, from_state=source, to_state=target, event=event,
        wave=release.current_wave if release.current_wave >= 0 else None,
        actor=_user(actor), actor_name=_actor_name(actor)[:150], at=now, reason=reason, evidence=evidence or {},
    )
    audit_record(
        actor=actor, action=f"release_{event}", obj=release, before={"state": source},
        after={"state": target, "wave": release.current_wave, "reason": reason}, note=reason[:500],
    )
    return target


def _claim_state(release: Release, target: str, now: datetime, **updates: Any) -> None:
    fields = {"state": target, "lock_version": release.lock_version + 1, "updated_at": now, **updates}
    claimed = Release.objects.filter(pk=release.pk, state=release.state, lock_version=release.lock_version).update(
        **fields
    )
    if claimed != 1:
        raise Conflict("the release changed meanwhile; reload it and retry")
    for key, value in fields.items():
        setattr(release, key, value)


def _store_gates(release: Release, outcomes: list[gates.GateOutcome], *, stage: str, now: datetime) -> None:
    GateResult.objects.bulk_create([
        GateResult(release=release, gate=o.gate, stage=stage, outcome=o.outcome, evidence=o.evidence, at=now)
        for o in outcomes
    ])


def _reason_required(reason: Any, path: str = "reason") -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("invalid input", problems=[Problem(path, "required: say why")])
    return reason.strip()[:2000]


# -- create ---------------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _parse_waves(raw: Any, problems: list[Problem]) -> list[dict[str, Any]]:
    if raw is None:
        return [{"percent": p, "bake_s": b} for p, b in machine.DEFAULT_WAVES]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_WAVES:
        problems.append(Problem("waves", f"a list of 1 to {MAX_WAVES} waves"))
        return []
    out, previous = [], 0.0
    for index, wave in enumerate(raw):
        path = f"waves[{index}]"
        if not isinstance(wave, dict):
            problems.append(Problem(path, "an object with percent and bake_s"))
            continue
        percent, bake_s = wave.get("percent"), wave.get("bake_s", 0)
        if isinstance(percent, bool) or not isinstance(percent, int | float) or not previous < percent <= 100:
            problems.append(Problem(f"{path}.percent", f"a number above {previous:g} and at most 100 (cumulative)"))
            continue
        if isinstance(bake_s, bool) or not isinstance(bake_s, int) or not 0 <= bake_s <= MAX_BAKE_S:
            problems.append(Problem(f"{path}.bake_s", f"whole seconds from 0 to {MAX_BAKE_S}"))
            continue
        previous = float(percent)
        out.append({"percent": float(percent), "bake_s": bake_s})
    if out and out[-1]["percent"] != 100:
        problems.append(Problem("waves", "the last wave must reach 100%"))
    return out


def _parse_selector(raw: Any, problems: list[Problem]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem("target", "an object: tier, region, labels, gateways"))
        return {}
    out: dict[str, Any] = {}
    for key in sorted(set(raw) - {"tier", "region", "labels", "gateways"}):
        problems.append(Problem(f"target.{key}", "unknown field"))
    for key in ("tier", "region"):
        if raw.get(key) not in (None, ""):
            if not isinstance(raw[key], str):
                problems.append(Problem(f"target.{key}", "a string"))
            else:
                out[key] = raw[key]
    labels = raw.get("labels")
    if labels is not None:
        if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            problems.append(Problem("target.labels", "an object of string values"))
        elif bad_keys := [key for key in labels if not label_key_ok(key)]:
            problems += [Problem(f"target.labels.{key}", f"label key: {LABEL_KEY_RULE}") for key in bad_keys]
        else:
            out["labels"] = labels
    ids = raw.get("gateways")
    if ids is not None:
        if not isinstance(ids, list) or not ids or any(_int(i) is None for i in ids):
            problems.append(Problem("target.gateways", "a non-empty list of gateway ids"))
        else:
            out["gateways"] = sorted({_int(i) for i in ids})
    return out


def _document_version(kind_key: str, service: Service, ref: Any, problems: list[Problem]) -> Any:
    """The service's document version by number; a release ships only versions that passed their
    own review (`approved`): a draft cannot ride along, a retired one is withdrawn."""
    from routing.models.documents import APPROVED, CacheConfigVersion, RoutingPolicyVersion

    if ref is None:
        return None
    number = _int(ref)
    if number is None or number < 1:
        problems.append(Problem(kind_key, "a version number of the service's document"))
        return None
    model = RoutingPolicyVersion if kind_key == "routing_policy_version" else CacheConfigVersion
    row = model.objects.select_related("line__service").filter(line__service=service, version=number).first()
    if row is None:
        problems.append(Problem(kind_key, f"{service.name} has no version {number}"))
    elif row.state != APPROVED:
        problems.append(Problem(kind_key, f"version {number} is {row.state}: a release ships only approved versions "
                                          "(an approver other than its author approves it first)"))
    return row


def _draft_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a draft release from a create body, or a 400 naming every problem."""
    problems: list[Problem] = []
    allowed = {"service", "kind", "title", "reason", "routing_policy_version", "cache_config_version",
               "model_version", "target", "waves", "confirm_wave_sizes"}
    for key in sorted(set(data) - allowed):
        problems.append(Problem(key, "unknown field"))
    ref = data.get("service")
    service = None
    if isinstance(ref, str) and ref:
        service = Service.objects.filter(name=ref).first()
    elif _int(ref) is not None:
        service = Service.objects.filter(pk=_int(ref)).first()
    if service is None:
        raise ValidationFailed("invalid release", problems=[*problems, Problem("service", "unknown service")])
    kind = data.get("kind", "normal")
    if kind not in RELEASE_KINDS:
        problems.append(Problem("kind", f"one of {', '.join(RELEASE_KINDS)}"))
    reason = data.get("reason", "")
    if not isinstance(reason, str):
        problems.append(Problem("reason", "a string"))
        reason = ""
    if kind in ("hotfix", "rollback") and not reason.strip():
        problems.append(Problem("reason", f"a {kind} release needs a reason (it may pass a budget freeze)"))
    title = data.get("title", "")
    if not isinstance(title, str) or len(title) > 200:
        problems.append(Problem("title", "a string of at most 200 characters"))
        title = ""
    policy = _document_version("routing_policy_version", service, data.get("routing_policy_version"), problems)
    cache = _document_version("cache_config_version", service, data.get("cache_config_version"), problems)
    model = None
    if data.get("model_version") is not None:
        model_id = _int(data["model_version"])
        model = ModelVersion.objects.filter(pk=model_id).first() if model_id is not None else None
        if model is None:
            problems.append(Problem("model_version", "unknown model version id"))
        elif model.service_id != service.pk:
            problems.append(Problem("model_version", f"belongs to another service, not {service.name}"))
    if all(data.get(k) is None for k in ("routing_policy_version", "cache_config_version", "model_version")):
        problems.append(Problem("", "a release needs a routing policy version, a cache config version or a model "
                                    "version"))
    confirm = data.get("confirm_wave_sizes", False)
    if not isinstance(confirm, bool):
        problems.append(Problem("confirm_wave_sizes", "true or false"))
    selector = _parse_selector(data.get("target"), problems)
    waves = _parse_waves(data.get("waves"), problems)
    if problems:
        raise ValidationFailed("invalid release", problems=problems)
    return {"service": service, "kind": kind, "title": title, "reason": reason.strip(),
            "routing_policy_version": policy, "cache_config_version": cache, "model_version": model,
            "target_selector": selector, "wave_plan": waves, "confirm": confirm is True}


def _wave_size_problem(preview: dict[str, Any]) -> Problem | None:
    """A first wave bigger than asked (beyond rounding) that nobody confirmed for this many gateways."""
    if not preview["first_wave_larger_than_requested"] or preview["confirmed"]:
        return None
    first = preview["waves"][0]
    return Problem("waves[0].percent", (
        f"{first['requested_percent']:g}% of {preview['gateways']} gateways is {first['gateways']} gateway(s), "
        f"{first['percent']:g}% of them (a wave is whole gateways, at least one): ask for {first['percent']:g}%, "
        "or send confirm_wave_sizes: true to accept it"))


def release_preview(*, data: Mapping[str, Any]) -> dict[str, Any]:
    """What a create body would give, written nowhere: the gateways its target matches now and the
    effective size of every wave, and whether the first wave needs a confirmation."""
    fields = _draft_fields(data)
    confirm = fields.pop("confirm")
    draft = Release(**fields)
    preview = selectors.wave_preview(release=draft)
    preview["confirmed"] = preview["first_wave_larger_than_requested"] and confirm
    problem = _wave_size_problem(preview)
    preview["problems"] = [problem.as_dict()] if problem else []
    return preview


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
            **fields, author=_user(actor), author_name=_actor_name(actor)[:150], created_at=now, updated_at=now,
            wave_sizes_confirmed_for=preview["gateways"] if confirm else None,
        )
        audit_record(actor=actor, action="create", obj=release, after=release_view(release))
    return release


# -- submit -------------------------------------------------------------------------------------------


resolve_targets = selectors.resolve_targets


def _applied_bundles(gateways: list[Gateway]) -> dict[int, tuple[int | None, dict[str, Any] | None]]:
    """gateway id -> (applied revision, its bundle): the last-known-good of each gateway."""
    wanted = [(g.pk, g.applied_revision) for g in gateways if g.applied_revision is not None]
    rows = {}
    if wanted:
        from django.db.models import Q

        condition = Q()
        for gateway_id, revision in wanted:
            condition |= Q(gateway_id=gateway_id, revision=revision)
        rows = {(r.gateway_id, r.revision): r.bundle for r in GatewayRevision.objects.filter(condition)}
    return {g.pk: (g.applied_revision, rows.get((g.pk, g.applied_revision))) for g in gateways}


def release_bundle(release: Release, base: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    """The bundle a gateway gets: its last-known-good with the release's parts swapped in."""
    base = base or {}
    bundle = {
        "revision": 1,  # placeholder: gateway_set_desired numbers it
        "service": release.service.name,
        "routing_policy": release.routing_policy_version.document if release.routing_policy_version_id
        else base.get("routing_policy"),
        "cache_config": release.cache_config_version.document if release.cache_config_version_id
        else base.get("cache_config"),
        "model_version": release.model_version.label if release.model_version_id else base.get("model_version"),
    }
    missing = [k for k in ("routing_policy", "cache_config") if not isinstance(bundle[k], dict)]
    if missing:
        return None, f"runs no {' or '.join(missing)} yet: the release must include one"
    return bundle, ""


def _bundles(release: Release, gateways: list[Gateway]) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    applied = _applied_bundles(gateways)
    bundles, missing = {}, {}
    for gateway in gateways:
        bundle, why = release_bundle(release, applied[gateway.pk][1])
        if bundle is None:
            missing[gateway.pk] = why
        else:
            bundles[gateway.pk] = bundle
    return bundles, missing


def _busy_gateways(gateway_ids: list[int], *, exclude_release: int) -> dict[int, int]:
    """gateway id -> id of another open release that targets it."""
    rows = ReleaseGateway.objects.filter(
        gateway_id__in=gateway_ids,
        release__state__in=[PENDING_APPROVAL, APPROVED, ROLLING_OUT, PAUSED],
    ).exclude(release_id=exclude_release).values_list("gateway_id", "release_id")
    return dict(rows)


def _required_approvals(release: Release, extra: int) -> int:
    settings_row = selectors.release_settings_for(service_id=release.service_id)
    return max(1, settings_row.required_approvals) + max(0, extra)


def _gate_problems(outcomes: list[gates.GateOutcome]) -> list[dict[str, str]]:
    out = []
    for o in outcomes:
        if o.outcome == gates.FAIL:
            detail = o.evidence.get("reason") or "; ".join(
                p["message"] for p in o.evidence.get("problems", [])[:3]) or "failed"
            if o.gate == "paging":
                detail = "SLOs paging: " + ", ".join(o.evidence.get("paging_slos", []))
            out.append({"path": f"gates.{o.gate}", "message": detail})
    return out


def release_submit(*, actor: Any, release_id: int, confirm_wave_sizes: bool = False,
                   now: datetime | None = None) -> Release:
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
    gateways = resolve_targets(release=release)
    if not gateways:
        raise ValidationFailed("invalid release", problems=[Problem("target", "matches no gateway of the service")])
    busy = _busy_gateways([g.pk for g in gateways], exclude_release=release.pk)
    if busy:
        raise Conflict("gateways are in another open release", problems=[
            Problem(f"target.gateways[{g}]", f"in release {r}") for g, r in sorted(busy.items())])
    confirmed_for = len(gateways) if confirm_wave_sizes else release.wave_sizes_confirmed_for
    preview = selectors.wave_preview(release=release, confirmed_for=confirmed_for, gateways=gateways)
    problem = _wave_size_problem(preview)
    if problem is not None:
        raise ValidationFailed("invalid release", problems=[problem], extra={"wave_preview": preview})
    plan = [(w["percent"], w["bake_s"]) for w in release.wave_plan]
    ranges = machine.plan_waves(len(gateways), plan)
    kept = [size for size in machine.wave_sizes(len(gateways), plan) if not size.dropped]
    waves = [
        {"percent": size.percent, "requested_percent": size.requested_percent, "bake_s": int(bake_s),
         "gateway_ids": [g.pk for g in gateways[start:stop]]}
        for (start, stop, bake_s), size in zip(ranges, kept, strict=True)
    ]
    bundles, missing = _bundles(release, gateways)
    outcomes = [gates.gate_documents(release=release, bundles=bundles, missing=missing)]
    budget_outcomes, extra = gates.budget_gates(release=release, now=now)
    outcomes += budget_outcomes
    outcomes.append(gates.gate_simulation(release=release, now=now))
    failed = [o for o in outcomes if o.outcome == gates.FAIL]
    inconclusive = [o for o in outcomes if o.outcome == gates.INCONCLUSIVE]
    with transaction.atomic():
        locked = _locked_or_404(release.pk)
        if locked.lock_version != release.lock_version or locked.state != DRAFT:
            raise Conflict("the release changed meanwhile; reload it and retry")
        _store_gates(locked, outcomes, stage="submission", now=now)
        if failed:
            audit_record(actor=actor, action="release_submit_refused", obj=locked,
                         after={"failed_gates": [o.gate for o in failed]})
        else:
            ReleaseGateway.objects.bulk_create([
                ReleaseGateway(release=locked, gateway_id=gateway_id, wave=index)
                for index, wave in enumerate(waves) for gateway_id in wave["gateway_ids"]
            ])
            _transition(
                locked, event=SUBMIT, actor=actor, now=now, reason=locked.reason,
                evidence={"gates": {o.gate: o.outcome for o in outcomes}, "gateways": len(gateways),
                          "waves": [len(w["gateway_ids"]) for w in waves]},
                waves=waves, required_approvals=_required_approvals(locked, extra), submitted_at=now,
                wave_sizes_confirmed_for=confirmed_for,
            )
            if inconclusive:
                _pause(locked, actor=SYSTEM, now=now, stage="submission", outcomes=inconclusive)
    if failed:
        raise Conflict(
            "the release is refused by its gates", problems=_gate_problems(failed),
            extra={"gates": [{"gate": o.gate, "outcome": o.outcome, "evidence": o.evidence} for o in outcomes]},
        )
    return selectors.release_get(release_id=release.pk)


def _pause(release: Release, *, actor: Any, now: datetime, stage: str, outcomes: list[gates.GateOutcome] | None = None,
           reason: str = "") -> None:
    reason = reason or "waiting for a person: " + "; ".join(
        f"{o.gate} inconclusive ({o.evidence.get('reason') or 'see evidence'})" for o in outcomes or [])
    _transition(
        release, event=PAUSE, actor=actor, now=now, reason=reason,
        evidence={"stage": stage, "gates": [{"gate": o.gate, "evidence": o.evidence} for o in outcomes or []]},
        paused_from=release.state, paused_reason=reason, paused_stage=stage,
    )


# -- people's decisions --------------------------------------------------------------------------------


def _content_four_eyes(release: Release, actor: Any, doing: str) -> None:
    """Nobody who wrote a document version (or registered the model version) the release ships
    decides on it: their own review would be the only one."""
    wrote = selectors.content_authored_by(release=release, user=actor)
    if wrote:
        raise Forbidden(
            f"you wrote {', '.join(wrote)}, which this release ships: someone else must {doing} (four eyes)",
            problems=[Problem("", f"author of {what}") for what in wrote])


def _unreviewed_versions(release: Release) -> list[Problem]:
    """Shipped document versions that are not (or no longer) approved."""
    from routing.models.documents import APPROVED

    out = []
    for key, version in (("routing_policy_version", release.routing_policy_version),
                         ("cache_config_version", release.cache_config_version)):
        if version is not None:
            version.refresh_from_db(fields=["state"])
            if version.state != APPROVED:
                out.append(Problem(key, f"version {version.version} is {version.state}: only approved versions ship"))
    return out


def _decide(actor: Any, release_id: int, decision: str, comment: Any, now: datetime) -> Release:
    comment = _reason_required(comment, "comment")
    if not has_role(actor, APPROVER):
        raise Forbidden("only approvers decide on releases")
    with transaction.atomic():
        release = _locked_or_404(release_id)
        if release.author_id is not None and release.author_id == getattr(actor, "pk", None):
            raise Forbidden("the author of a release cannot approve or reject it (four eyes)")
        _content_four_eyes(release, actor, "approve or reject it")
        event = APPROVE if decision == "approve" else REJECT
        if release.state != PENDING_APPROVAL:
            raise IllegalTransition(
                f"cannot {decision} a release that is {release.state}", extra={"state": release.state, "event": event}
            )
        unreviewed = _unreviewed_versions(release) if decision == "approve" else []
        if unreviewed:
            raise Conflict("the release ships document versions that are not approved", problems=unreviewed)
        try:
            with transaction.atomic():
                ReleaseApproval.objects.create(release=release, approver=actor, approver_name=_actor_name(actor),
                                               decision=decision, comment=comment, at=now)
        except IntegrityError:
            raise Conflict("you already decided on this release") from None
        audit_record(actor=actor, action=f"release_{decision}_vote", obj=release, after={"comment": comment},
                     note=comment[:500])
        approvals = selectors.approvals_count(release_id=release.pk)
        if decision == "reject":
            _transition(release, event=REJECT, actor=actor, now=now, reason=comment, finished_at=now,
                        evidence={"approvals": approvals, "required": release.required_approvals})
        elif approvals >= release.required_approvals:
            _transition(release, event=APPROVE, actor=actor, now=now, reason=comment,
                        evidence={"approvals": approvals, "required": release.required_approvals})
            transaction.on_commit(lambda: _enqueue_tick(release.pk))
        else:
            # Not enough approvals yet: the vote is stored, the state stays. Bump the claim so a
            # concurrent vote cannot be counted against a stale total.
            _claim(release, now)
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
    reason = _reason_required(reason)
    if not has_role(actor, APPROVER):
        raise Forbidden("only approvers may resume a paused release")
    with transaction.atomic():
        release = _locked_or_404(release_id)
        if release.author_id is not None and release.author_id == getattr(actor, "pk", None):
            raise Forbidden("the author of a release cannot overrule its gates (four eyes)")
        _content_four_eyes(release, actor, "decide whether it goes on")
        stage = release.paused_stage
        overrides = dict(release.overrides or {})
        if stage:
            overrides[stage] = {"by": _actor_name(actor), "reason": reason, "at": now.isoformat()}
        updates: dict[str, Any] = {"paused_from": "", "paused_reason": "", "paused_stage": "", "overrides": overrides}
        if stage.startswith("ack:"):
            updates["wave_started_at"] = now  # restart the ACK timer
        if stage.startswith("canary:") or stage.startswith("wave:"):
            updates["canary_verdicts"] = [*release.canary_verdicts, "accepted"]
        _transition(release, event=RESUME, actor=actor, now=now, reason=reason,
                    evidence={"stage": stage, "paused_reason": release.paused_reason}, **updates)
        if release.state in (APPROVED, ROLLING_OUT):
            transaction.on_commit(lambda: _enqueue_tick(release.pk))
    return selectors.release_get(release_id=release_id)


def release_cancel(*, actor: Any, release_id: int, reason: Any, now: datetime | None = None) -> Release:
    """Stop a release that has not touched any gateway. Once gateways run it, roll it back instead."""
    now = now or timezone.now()
    reason = _reason_required(reason)
    with transaction.atomic():
        release = _locked_or_404(release_id)
        if ReleaseGateway.objects.filter(release=release, release_revision__isnull=False).exists():
            raise Conflict("gateways already run this release: roll it back instead",
                           extra={"state": release.state, "event": CANCEL})
        _transition(release, event=CANCEL, actor=actor, now=now, reason=reason, finished_at=now)
    return selectors.release_get(release_id=release_id)


def release_rollback(
    *, actor: Any, release_id: int, reason: Any, trigger: str = "manual", evidence: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Release:
    """Put every gateway the release touched back on its last-known-good bundle, delivered first.
    Allowed during a budget freeze (a rollback is always allowed)."""
    now = now or timezone.now()
    reason = _reason_required(reason)
    with transaction.atomic():
        release = _locked_or_404(release_id)
        _rollback(release, trigger=trigger, actor=actor, reason=reason, evidence=evidence or {}, now=now)
    return selectors.release_get(release_id=release_id)


def _rollback(release: Release, *, trigger: str, actor: Any, reason: str, evidence: dict[str, Any],
              now: datetime) -> ReleaseRollback:
    touched = selectors.touched_targets(release_id=release.pk)
    if release.state == PAUSED and not touched:
        raise IllegalTransition("nothing to roll back: no gateway runs this release yet; cancel it instead",
                                extra={"state": release.state, "event": ROLLBACK})
    bundles: dict[int, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for target in touched:
        if target.baseline_bundle is None:
            skipped[str(target.gateway_id)] = "no last-known-good: it ran no revision before the release"
        else:
            bundles[target.gateway_id] = target.baseline_bundle
    _transition(release, event=ROLLBACK, actor=actor, now=now, reason=reason,
                evidence={"trigger": trigger, **evidence}, finished_at=now, wave_phase="")
    revisions = []
    if bundles:
        # validate=False: the last-known-good ran on these gateways; a validator change since must
        # not keep a burning release in place.
        revisions = gateway_set_desired(
            actor=actor if _user(actor) else f"{SYSTEM}:{trigger}", gateway_ids=list(bundles),
            bundle_for=lambda gateway: bundles[gateway.pk], reason=f"rollback of release {release.pk}: {reason}"[:300],
            priority="rollback", release_id=release.pk, validate=False, now=now,
        )
    rollback = ReleaseRollback.objects.create(
        release=release, trigger=trigger, actor_name=_actor_name(actor)[:150], reason=reason, evidence=evidence,
        gateway_revisions={str(r.gateway_id): r.revision for r in revisions}, skipped=skipped, at=now,
        acknowledged_at=None if revisions else now,
    )
    audit_record(actor=actor, action="release_rollback_issued", obj=release,
                 after={"trigger": trigger, "gateway_revisions": rollback.gateway_revisions, "skipped": skipped},
                 note=reason[:500])
    return rollback


# -- the tick ---------------------------------------------------------------------------------------


def _enqueue_tick(release_id: int) -> None:
    try:
        from routing.tasks.releases import release_step_task

        release_step_task.delay(release_id)
    except Exception:  # noqa: BLE001 - the periodic tick finds the release anyway
        logger.warning("could not enqueue release step %s; the periodic tick will pick it up", release_id,
                       exc_info=True)


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


def rollback_confirm(*, now: datetime) -> list[int]:
    """Mark rollbacks whose every gateway runs its rollback revision; returns their ids."""
    done = []
    for rollback in selectors.rollback_pending_ack():
        revisions = {int(k): v for k, v in rollback.gateway_revisions.items()}
        if all(selectors.gateways_running(revisions=revisions).values()):
            if ReleaseRollback.objects.filter(pk=rollback.pk, acknowledged_at__isnull=True).update(acknowledged_at=now):
                audit_record(actor=SYSTEM, action="release_rollback_acknowledged", obj=rollback.release,
                             after={"rollback": rollback.pk, "gateway_revisions": rollback.gateway_revisions})
                done.append(rollback.pk)
    return done


def release_step(*, release_id: int, now: datetime) -> str:
    """One step of one release; returns what happened (for logs and tests)."""
    with transaction.atomic():
        release = _lock(release_id, skip_locked=True)
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
        .filter(kind="burn_rate", severity="page", state="firing", at__gte=release.rollout_started_at, at__lte=now)
        .order_by("at").first()
    )
    if event is None:
        return None
    evidence = {"alert": {"slo": event.slo.name if event.slo_id else None, "at": event.at.isoformat(),
                          "windows": event.windows, "evidence": event.evidence}}
    _rollback(release, trigger="burn", actor=SYSTEM, now=now, evidence=evidence,
              reason=f"page-level burn on {evidence['alert']['slo']} since {event.at.isoformat()}")
    return "rolled_back:burn"


def _wave_gates(release: Release, wave: int, now: datetime) -> tuple[str, list[gates.GateOutcome]]:
    outcomes, _extra = gates.budget_gates(release=release, now=now)
    stage = f"wave:{wave}"
    if stage in (release.overrides or {}):
        for o in outcomes:
            if o.outcome == gates.INCONCLUSIVE:
                o.evidence["accepted_by"] = release.overrides[stage]
                o.outcome = gates.PASS
    _store_gates(release, outcomes, stage=stage, now=now)
    if any(o.outcome == gates.FAIL for o in outcomes):
        return gates.FAIL, outcomes
    if any(o.outcome == gates.INCONCLUSIVE for o in outcomes):
        return gates.INCONCLUSIVE, outcomes
    return gates.PASS, outcomes


def _begin_wave(release: Release, wave: int, now: datetime) -> str:
    verdict, outcomes = _wave_gates(release, wave, now)
    failed = [o for o in outcomes if o.outcome == gates.FAIL]
    if verdict == gates.INCONCLUSIVE:
        _pause(release, actor=SYSTEM, now=now, stage=f"wave:{wave}",
               outcomes=[o for o in outcomes if o.outcome == gates.INCONCLUSIVE])
        return f"paused:wave:{wave}"
    if verdict == gates.FAIL:
        problems = "; ".join(p["message"] for p in _gate_problems(failed))
        reason = f"gate failed before wave {wave + 1}: {problems}"
        if wave == 0:
            _transition(release, event=CANCEL, actor=SYSTEM, now=now, reason=reason, finished_at=now,
                        evidence={"gates": [{"gate": o.gate, "evidence": o.evidence} for o in failed]})
            return "cancelled:gate"
        _rollback(release, trigger="gate", actor=SYSTEM, now=now, reason=reason,
                  evidence={"gates": [{"gate": o.gate, "evidence": o.evidence} for o in failed]})
        return "rolled_back:gate"
    targets = selectors.wave_targets(release_id=release.pk, wave=wave)
    gateways = [t.gateway for t in targets]
    applied = _applied_bundles(gateways)
    bundles: dict[int, dict[str, Any]] = {}
    for gateway in gateways:
        bundle, why = release_bundle(release, applied[gateway.pk][1])
        if bundle is not None:
            bundles[gateway.pk] = bundle
    event = START if wave == 0 else ADVANCE
    updates: dict[str, Any] = {"current_wave": wave, "wave_phase": "delivering", "wave_started_at": now,
                               "bake_started_at": None, "analysed_until": None, "canary_verdicts": []}
    if wave == 0:
        updates["rollout_started_at"] = now
    try:
        with transaction.atomic():
            if len(bundles) != len(gateways):
                raise ValidationFailed("invalid bundle", problems=[Problem(f"gateways[{g.pk}]", "no bundle")
                                                                   for g in gateways if g.pk not in bundles])
            _transition(release, event=event, actor=SYSTEM, now=now,
                        reason=f"wave {wave + 1} of {len(release.waves)}: {len(gateways)} gateway(s)",
                        evidence={"gateways": [g.pk for g in gateways]}, **updates)
            revisions = gateway_set_desired(
                actor=SYSTEM, gateway_ids=list(bundles), bundle_for=lambda gateway: bundles[gateway.pk],
                reason=f"release {release.pk} wave {wave + 1}", release_id=release.pk, now=now,
            )
            by_gateway = {r.gateway_id: r.revision for r in revisions}
            for target in targets:
                revision, bundle = applied[target.gateway_id]
                ReleaseGateway.objects.filter(pk=target.pk).update(
                    baseline_revision=revision, baseline_bundle=bundle,
                    release_revision=by_gateway[target.gateway_id], touched_at=now,
                )
    except ValidationFailed as exc:
        # The bundles no longer validate (a validator or a document changed): stop, with the reason.
        release.refresh_from_db()
        reason = f"wave {wave + 1} could not be delivered: {exc.message}"
        _store_gates(release, [gates.GateOutcome("documents", gates.FAIL, {"problems": exc.problems[:20]})],
                     stage=f"wave:{wave}", now=now)
        if wave == 0:
            _transition(release, event=CANCEL, actor=SYSTEM, now=now, reason=reason, finished_at=now)
            return "cancelled:documents"
        _rollback(release, trigger="gate", actor=SYSTEM, now=now, reason=reason, evidence={"problems": exc.problems[:20]})
        return "rolled_back:documents"
    return f"wave:{wave}:delivering"


def _check_acks(release: Release, now: datetime) -> str:
    targets = selectors.wave_targets(release_id=release.pk, wave=release.current_wave)
    nacked = [t for t in targets if t.gateway.last_nack_revision is not None
              and t.gateway.last_nack_revision == t.release_revision]
    if nacked:
        evidence = {"nacks": [{"gateway": t.gateway_id, "revision": t.release_revision,
                               "error": t.gateway.last_nack_error[:500]} for t in nacked]}
        _rollback(release, trigger="nack", actor=SYSTEM, now=now, evidence=evidence,
                  reason=f"{len(nacked)} gateway(s) rejected the release's bundle")
        return "rolled_back:nack"
    waiting = [t.gateway_id for t in targets if t.gateway.applied_revision is None
               or t.release_revision is None or t.gateway.applied_revision < t.release_revision]
    if not waiting:
        _store_gates(release, [gates.GateOutcome("delivery", gates.PASS, {
            "gateways": {str(t.gateway_id): t.release_revision for t in targets},
            "acknowledged_after_s": (now - release.wave_started_at).total_seconds() if release.wave_started_at else None,
        })], stage=f"wave:{release.current_wave}", now=now)
        _claim(release, now, wave_phase="baking", bake_started_at=now, analysed_until=now)
        return _bake(release, now)
    started = release.wave_started_at or now
    if (now - started).total_seconds() > ACK_TIMEOUT_S:
        stage = f"ack:{release.current_wave}"
        _pause(release, actor=SYSTEM, now=now, stage=stage,
               reason=f"{len(waiting)} gateway(s) did not acknowledge within {ACK_TIMEOUT_S} s: {waiting[:20]}")
        return f"paused:{stage}"
    return f"wave:{release.current_wave}:waiting_for_acks:{len(waiting)}"


def canary_settings(*, release: Release) -> tuple[canary.Criteria, int, int]:
    """(criteria, window minutes, lag minutes) from the service's release settings."""
    raw = dict(selectors.release_settings_for(service_id=release.service_id).canary or {})
    window = int(raw.pop("window_minutes", ANALYSIS_WINDOW_MINUTES))
    lag = int(raw.pop("lag_minutes", ANALYSIS_LAG_MINUTES))
    return canary.Criteria.from_mapping(raw), max(1, window), max(0, lag)


def canary_measure(*, release: Release, now: datetime) -> tuple[canary.Measurement, dict[str, Any]] | None:
    """One canary measurement over the newest complete minutes not analysed yet, or None when no new
    minute has completed (with the lag for gateways to push it)."""
    criteria, window, lag = canary_settings(release=release)
    bake_start = release.bake_started_at or now
    first_bake, _ = selectors.minute_bounds(bake_start, bake_start)
    _, stop = selectors.minute_bounds(bake_start, now - timedelta(minutes=lag))
    done = first_bake
    if release.analysed_until is not None:
        done = max(first_bake, -(-int(release.analysed_until.timestamp()) // 60))
    if stop <= done:
        return None  # no minute completed (and pushed) since the last measurement
    first = max(first_bake, stop - window)
    targets = selectors.wave_targets(release_id=release.pk, wave=release.current_wave)
    canary_ids = [t.gateway_id for t in targets]
    # A tier-scoped SLO is measured from gateways of that tier only: a wave with none of them says
    # nothing about it (not "no traffic"). Page-level burn on it still rolls the release back.
    canary_tiers = {t.gateway.tier for t in targets}
    slos, not_applicable = [], []
    for slo in Slo.objects.filter(service=release.service, archived_at__isnull=True).order_by("name"):
        if not slo.tier or slo.tier in canary_tiers:
            slos.append(slo)
        else:
            not_applicable.append({"slo": slo.name, "tier": slo.tier,
                                   "reason": f"no gateway of this wave runs on {slo.tier}"})
    baseline_ids = selectors.baseline_gateway_ids(release=release, exclude=canary_ids)
    canary_stats = selectors.group_stats(service=release.service.name, slos=slos, gateway_ids=canary_ids,
                                         first_minute=first, stop_minute=stop)
    baseline_stats = selectors.group_stats(service=release.service.name, slos=slos, gateway_ids=baseline_ids,
                                           first_minute=first, stop_minute=stop) if baseline_ids else None
    measurement = canary.measure(canary_stats, baseline_stats, criteria)
    from slo.telemetry.selectors import minute_datetime

    evidence = {
        **measurement.as_dict(),
        "window": {"start": minute_datetime(first).isoformat(), "end": minute_datetime(stop).isoformat()},
        "canary_gateways": canary_ids, "baseline_gateways": baseline_ids, "criteria": criteria.as_dict(),
        "slos_not_applicable": not_applicable,
        "canary": {"requests": canary_stats.requests, "errors": canary_stats.errors, "p95_ms": canary_stats.p95_ms,
                   "slos": [vars(s) for s in canary_stats.slos]},
        "baseline": None if baseline_stats is None else {
            "requests": baseline_stats.requests, "errors": baseline_stats.errors, "p95_ms": baseline_stats.p95_ms,
            "slos": [vars(s) for s in baseline_stats.slos]},
    }
    return measurement, {"evidence": evidence, "stop": minute_datetime(stop)}


def _bake(release: Release, now: datetime) -> str:
    wave = release.current_wave
    criteria, _window, _lag = canary_settings(release=release)
    result = canary_measure(release=release, now=now)
    verdicts = list(release.canary_verdicts)
    accepted = "accepted" in verdicts
    if result is not None:
        measurement, info = result
        verdicts.append(measurement.verdict)
        _store_gates(release, [gates.GateOutcome("canary", measurement.verdict, info["evidence"])],
                     stage=f"canary:{wave}", now=now)
        _claim(release, now, canary_verdicts=verdicts, analysed_until=info["stop"])
        measured = [v for v in verdicts if v in canary.VERDICTS]
        verdict = canary.overall(measured, criteria)
        if verdict == canary.FAIL:
            _rollback(release, trigger="canary", actor=SYSTEM, now=now,
                      reason=f"canary analysis failed in wave {wave + 1} ({criteria.failure_limit} failing "
                             f"measurements in a row)", evidence={"measurement": info["evidence"]})
            return "rolled_back:canary"
    # An inconclusive measurement (too few events yet: the first minutes of a bake, a quiet SLO) is
    # not a verdict: the window fills as the bake goes on. Only a bake that ends inconclusive waits
    # for a person.
    bake_s = release.waves[wave]["bake_s"]
    if release.bake_started_at is None or (now - release.bake_started_at).total_seconds() < bake_s:
        return f"wave:{wave}:baking"
    measured = [v for v in verdicts if v in canary.VERDICTS]
    if measured and canary.overall(measured, criteria) == canary.INCONCLUSIVE and not accepted:
        last = release.gate_results.filter(gate="canary", stage=f"canary:{wave}").order_by("-at", "-id").first()
        checks = (last.evidence or {}).get("checks", []) if last is not None else []
        _pause(release, actor=SYSTEM, now=now, stage=f"canary:{wave}",
               reason=f"canary analysis inconclusive at the end of the bake of wave {wave + 1}: "
                      + ("; ".join(f"{c['name']}: {c['detail']}" for c in checks if c["outcome"] == canary.INCONCLUSIVE)
                         or "too little telemetry"))
        return f"paused:canary:{wave}"
    if bake_s > 0 and not measured and not accepted:
        _pause(release, actor=SYSTEM, now=now, stage=f"canary:{wave}",
               reason=f"no canary telemetry during the bake of wave {wave + 1}")
        return f"paused:canary:{wave}"
    if measured and measured[-1] == canary.FAIL:
        return f"wave:{wave}:baking"  # one failure: not enough to roll back, not good enough to advance
    if wave + 1 >= len(release.waves):
        _transition(release, event=COMPLETE, actor=SYSTEM, now=now, finished_at=now, wave_phase="",
                    reason=f"all {len(release.waves)} wave(s) delivered and baked")
        if release.model_version_id:
            ModelVersion.objects.filter(pk=release.model_version_id, deployed_at__isnull=True).update(deployed_at=now)
        return "completed"
    return _begin_wave(release, wave + 1, now)


# -- Alertmanager secrets (the webhook is routing.releases.alertmanager) -------------------------------------------------------------------------------------


def webhook_secret_create(*, actor: Any, name: Any) -> tuple[WebhookSecret, str]:
    """A new Alertmanager bearer secret; the raw value is returned this once, only its hash is kept."""
    import hashlib
    import re

    if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9-]{0,62}$", name):
        raise ValidationFailed("invalid input", problems=[Problem("name", "lowercase letters, digits and dashes")])
    raw = WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            row = WebhookSecret.objects.create(name=name, secret_hash=hashlib.sha256(raw.encode()).hexdigest(),
                                               hint=raw[:8], created_by_name=_actor_name(actor)[:150])
            audit_record(actor=actor, action="create", obj=row, after={"name": name, "hint": row.hint})
    except IntegrityError:
        raise ValidationFailed("invalid input", problems=[Problem("name", "a secret with this name exists")]) from None
    return row, raw


def webhook_secret_delete(*, actor: Any, secret_id: int) -> None:
    with transaction.atomic():
        row = WebhookSecret.objects.select_for_update().filter(pk=secret_id).first()
        if row is None:
            raise NotFound("no such webhook secret")
        audit_record(actor=actor, action="delete", obj=row, before={"name": row.name, "hint": row.hint})
        row.delete()


# -- model registry ------------------------------------------------------------------------------------------


MODEL_FIELDS = ("service", "name", "version", "description", "training_data_snapshot", "fine_tuning_source",
                "quantization", "artifact_digest", "rollback_target")
MODEL_MUTABLE = ("description", "rollback_target")


def model_version_view(model: ModelVersion) -> dict[str, Any]:
    return {
        "id": model.pk, "service": model.service.name, "name": model.name, "version": model.version,
        "description": model.description, "training_data_snapshot": model.training_data_snapshot,
        "fine_tuning_source": model.fine_tuning_source, "quantization": model.quantization,
        "artifact_digest": model.artifact_digest, "rollback_target": model.rollback_target_id,
        "deployed_at": model.deployed_at,
    }


def _model_fields(data: Mapping[str, Any], *, existing: ModelVersion | None) -> dict[str, Any]:
    import re

    problems: list[Problem] = []
    allowed = MODEL_MUTABLE if existing is not None else MODEL_FIELDS
    for key in sorted(set(data) - set(allowed)):
        message = "fixed once created (provenance): register a new version" if key in MODEL_FIELDS else "unknown field"
        problems.append(Problem(key, message))
    out: dict[str, Any] = {}
    service = existing.service if existing is not None else None
    if existing is None:
        ref = data.get("service")
        service = Service.objects.filter(name=ref).first() if isinstance(ref, str) else (
            Service.objects.filter(pk=_int(ref)).first() if _int(ref) is not None else None)
        if service is None:
            problems.append(Problem("service", "unknown service"))
        out["service"] = service
        name = data.get("name")
        if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9-]{0,62}$", name):
            problems.append(Problem("name", "required: lowercase letters, digits and dashes"))
        out["name"] = name
        version = data.get("version")
        if not isinstance(version, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,62}$", version):
            problems.append(Problem("version", "required: letters, digits, . _ + - (max 63)"))
        out["version"] = version
        snapshot = data.get("training_data_snapshot")
        if not isinstance(snapshot, str) or not snapshot.strip() or len(snapshot) > 300:
            problems.append(Problem("training_data_snapshot", "required: the dataset and its snapshot id"))
        out["training_data_snapshot"] = snapshot
        source = data.get("fine_tuning_source", "")
        if not isinstance(source, str) or len(source) > 300:
            problems.append(Problem("fine_tuning_source", "a string of at most 300 characters"))
        out["fine_tuning_source"] = source
        quantization = data.get("quantization", {})
        if not isinstance(quantization, dict) or len(str(quantization)) > 4000:
            problems.append(Problem("quantization", "an object (at most 4 KB)"))
        out["quantization"] = quantization
        digest = data.get("artifact_digest")
        if not isinstance(digest, str) or not gates.DIGEST_RE.match(digest):
            problems.append(Problem("artifact_digest", "required: sha256:<64 lowercase hex>"))
        out["artifact_digest"] = digest
    if "description" in data:
        if not isinstance(data["description"], str):
            problems.append(Problem("description", "a string"))
        out["description"] = data["description"]
    if "rollback_target" in data and data["rollback_target"] is not None:
        target = ModelVersion.objects.filter(pk=_int(data["rollback_target"])).first() if _int(
            data["rollback_target"]) is not None else None
        if target is None:
            problems.append(Problem("rollback_target", "unknown model version id"))
        elif service is not None and target.service_id != service.pk:
            problems.append(Problem("rollback_target", "belongs to another service"))
        elif existing is not None and target.pk == existing.pk:
            problems.append(Problem("rollback_target", "cannot be the version itself"))
        out["rollback_target"] = target
    elif "rollback_target" in data:
        out["rollback_target"] = None
    if problems:
        raise ValidationFailed("invalid model version", problems=problems)
    return out


def model_version_create(*, actor: Any, data: Mapping[str, Any], now: datetime | None = None) -> ModelVersion:
    fields = _model_fields(data, existing=None)
    try:
        with transaction.atomic():
            model = ModelVersion.objects.create(**fields, created_by_name=_actor_name(actor)[:150],
                                                created_at=now or timezone.now())
            audit_record(actor=actor, action="create", obj=model, after=model_version_view(model))
    except IntegrityError:
        raise ValidationFailed("invalid model version", problems=[
            Problem("version", "this service already has this model name and version")]) from None
    return model


def model_version_update(*, actor: Any, model_id: int, data: Mapping[str, Any]) -> ModelVersion:
    with transaction.atomic():
        model = ModelVersion.objects.select_for_update().select_related("service").filter(pk=model_id).first()
        if model is None:
            raise NotFound("no such model version")
        fields = _model_fields(data, existing=model)
        before = model_version_view(model)
        for key, value in fields.items():
            setattr(model, key, value)
        model.save()
        audit_record(actor=actor, action="update", obj=model, before=before, after=model_version_view(model))
    return model


def model_version_delete(*, actor: Any, model_id: int) -> None:
    with transaction.atomic():
        model = ModelVersion.objects.select_for_update().select_related("service").filter(pk=model_id).first()
        if model is None:
            raise NotFound("no such model version")
        if model.releases.exists() or model.deployed_at is not None:
            raise Conflict("the model version was released: it stays in the registry for provenance")
        audit_record(actor=actor, action="delete", obj=model, before=model_version_view(model))
        ModelVersion.objects.filter(rollback_target=model).update(rollback_target=None)
        model.delete()


def release_settings_save(*, actor: Any, service_name: str, data: Mapping[str, Any]) -> ReleaseSettings:
    """Required approvals (1..10), canary criteria overrides and the severities of Alertmanager
    alerts that roll back a release (default `["page"]`) for one service."""
    service = Service.objects.filter(name=service_name).first()
    if service is None:
        raise NotFound("no such service")
    problems: list[Problem] = []
    for key in sorted(set(data) - {"required_approvals", "canary", "alert_severities"}):
        problems.append(Problem(key, "unknown field"))
    severities = data.get("alert_severities", list(alerts.DEFAULT_SEVERITIES))
    problems += [Problem("alert_severities", message) for message in alerts.severities_problems(severities)]
    approvals = data.get("required_approvals", 1)
    if isinstance(approvals, bool) or not isinstance(approvals, int) or not 1 <= approvals <= 10:
        problems.append(Problem("required_approvals", "an integer from 1 to 10"))
    canary_raw = data.get("canary", {})
    allowed = {*canary.Criteria.__dataclass_fields__, "window_minutes", "lag_minutes"}
    if not isinstance(canary_raw, dict):
        problems.append(Problem("canary", "an object"))
    else:
        for key, value in canary_raw.items():
            if key not in allowed:
                problems.append(Problem(f"canary.{key}", f"unknown criterion; known: {', '.join(sorted(allowed))}"))
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                problems.append(Problem(f"canary.{key}", "a non-negative number"))
    if problems:
        raise ValidationFailed("invalid release settings", problems=problems)
    with transaction.atomic():
        row = ReleaseSettings.objects.select_for_update().filter(service=service).first()
        before = None if row is None else {"required_approvals": row.required_approvals, "canary": row.canary,
                                           "alert_severities": row.alert_severities}
        if row is None:
            row = ReleaseSettings(service=service)
        row.required_approvals = approvals
        row.canary = canary_raw
        row.alert_severities = severities
        row.updated_at = timezone.now()
        row.save()
        audit_record(actor=actor, action="update" if before else "create", obj=row, before=before,
                     after={"required_approvals": row.required_approvals, "canary": row.canary,
                            "alert_severities": row.alert_severities})
    return row


def parse_at(value: Any, path: str = "at") -> datetime:
    """An ISO 8601 instant with a timezone, or a 400."""
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well-formed but impossible, e.g. minute 60
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValidationFailed("invalid input", problems=[Problem(path, "an ISO 8601 time with a timezone")])
    return moment
