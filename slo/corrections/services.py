"""Writes for status corrections. Every write is one transaction with its version and audit event.

- Create / edit: validated (400 with field paths), a new immutable version. The version takes
  effect at once unless it would hide an ongoing page: then it waits (`pending_approval`) for an
  approver who is not its author, and the version in force before it (if any) stays in force.
- Delete: soft (`deleted`); the correction stops excluding, its versions and audit stay.
- Every change of the minutes in force (take effect, approve, delete) records spans for the
  budget feed over the affected SLOs and minutes still in telemetry retention, so the budgets of
  the past are recomputed by the regular backfill path (`slo.budget.feed.budget_sync_pending`).

"Would hide an ongoing page": a burn-rate page alert of an SLO in the new scope is firing and the
correction excludes a minute within the page's longest window before now or as long after it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import Forbidden, IllegalTransition, NotFound, ValidationFailed
from controlplane.roles import APPROVER, has_role
from slo.corrections.spec import CorrectionSpec, parse_correction_spec, spec_document
from slo.engine.alerts import alert_tiers_for
from slo.models.budget import AlertState
from slo.models.catalog import Slo
from slo.models.corrections import Correction, CorrectionVersion
from slo.spec import SloSpec

# How far either side of now a correction must reach to hide a firing composite page.
COMPOSITE_PAGE_REACH_MIN = 360


def _user_name(actor: Any) -> tuple[Any, str]:
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return (actor if is_user else None), (actor.get_username() if is_user else str(actor or "system"))


def _validated(data: Any) -> CorrectionSpec:
    spec, problems = parse_correction_spec(data)
    if spec is None:
        raise ValidationFailed("invalid correction", problems=problems)
    unknown = []
    if spec.scope.slos:
        pairs = [ref.split("/", 1) for ref in spec.scope.slos]
        known = {
            f"{svc}/{name}"
            for svc, name in Slo.objects.filter(archived_at__isnull=True)
            .filter(service__name__in={p[0] for p in pairs}, name__in={p[1] for p in pairs})
            .values_list("service__name", "name")
        }
        unknown = [
            {"path": f"scope.slos[{i}]", "message": f"no such SLO {ref!r}"}
            for i, ref in enumerate(spec.scope.slos)
            if ref not in known
        ]
    elif spec.scope.service and not Slo.objects.filter(service__name=spec.scope.service).exists():
        unknown = [{"path": "scope.service", "message": f"no SLO of service {spec.scope.service!r}"}]
    if unknown:
        raise ValidationFailed("invalid correction", problems=unknown)
    return spec


def scoped_slos(spec: CorrectionSpec) -> list[tuple[int, SloSpec]]:
    """(id, spec) of the active SLOs the correction applies to."""
    out = []
    for pk, doc in Slo.objects.filter(archived_at__isnull=True).values_list("pk", "spec"):
        slo_spec = SloSpec.model_validate(doc)
        if spec.scope.applies_to(service=slo_spec.service, name=slo_spec.name, tier=slo_spec.tier):
            out.append((pk, slo_spec))
    return out


def hidden_pages(spec: CorrectionSpec, *, now: datetime) -> list[str]:
    """The firing page alerts (as `service/name: why`) that this correction would hide: an SLO's
    burn-rate page, or a composite's page when one of its members is in scope."""
    firing = {
        state.slo_id: state
        for state in AlertState.objects.filter(
            kind="burn_rate", severity="page", firing=True, slo__isnull=False
        ).only("slo_id", "since")
    }
    composite_pages = dict(
        AlertState.objects.filter(kind="composite_burn", severity="page", firing=True).values_list(
            "key", "since"
        )
    )
    if not firing and not composite_pages:
        return []
    scoped = scoped_slos(spec)
    out = _hidden_composite_pages(spec, scoped, composite_pages, now) if composite_pages else []
    for pk, slo_spec in scoped:
        if pk not in firing:
            continue
        longest = max(
            (t.long_window_min for t in alert_tiers_for(slo_spec) if t.severity == "page"), default=60
        )
        reach = timedelta(minutes=longest)
        if spec.excluded_minutes(now - reach, now + reach):
            out.append(
                f"{slo_spec.service}/{slo_spec.name}: page firing since "
                f"{firing[pk].since.isoformat() if firing[pk].since else 'unknown'}; the correction "
                f"excludes minutes within its {longest}-minute window"
            )
    return out


def _hidden_composite_pages(
    spec: CorrectionSpec, scoped: list[tuple[int, SloSpec]], pages: dict[str, Any], now: datetime
) -> list[str]:
    """Firing composite pages (`composite:<id>:page`) with a member in scope, when the correction
    excludes a minute within 6 hours (the longest default page window) either side of now."""
    from slo.models.composites import CompositeMember

    since = {int(key.split(":")[1]): at for key, at in pages.items() if key.split(":")[1].isdigit()}
    in_scope = {pk for pk, _ in scoped}
    reach = timedelta(minutes=COMPOSITE_PAGE_REACH_MIN)
    if not in_scope or not spec.excluded_minutes(now - reach, now + reach):
        return []
    hit = (
        CompositeMember.objects.filter(composite_id__in=since, slo_id__in=in_scope)
        .values_list("composite_id", "composite__service__name", "composite__name")
        .distinct()
    )
    return [
        f"composite {service}/{name}: page firing since "
        f"{since[cid].isoformat() if since[cid] else 'unknown'}; the correction excludes minutes of a member"
        for cid, service, name in sorted(set(hit))
    ]


def _mark_recompute(specs: list[CorrectionSpec], now: datetime) -> int:
    """Spans for the budget feed: every SLO in any of the scopes, the minutes of the specs' spans
    that are in the past and still in telemetry retention. Returns the spans recorded."""
    from slo.telemetry.spans import span_statements
    from slo.telemetry.sql import run_statements

    current = int(now.timestamp() // 60)
    oldest = current - settings.TELEMETRY_MINUTE_RETENTION_DAYS * 1440
    wanted: dict[int, tuple[int, int]] = {}
    for spec in specs:
        start, end = spec.bounds()
        lo = max(int(start.timestamp() // 60), oldest)
        hi = current if end is None else min(int(end.timestamp() // 60), current)
        if lo > hi:
            continue  # entirely in the future: nothing written yet
        for pk, _slo_spec in scoped_slos(spec):
            old = wanted.get(pk)
            wanted[pk] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
    if wanted:
        run_statements(span_statements([(pk, lo, hi) for pk, (lo, hi) in sorted(wanted.items())], now))
    return len(wanted)


def _doc(correction: Correction) -> dict[str, Any]:
    return {
        "spec": correction.spec,
        "version": correction.version,
        "state": correction.state,
        "effective_version": correction.effective_version,
        "approval_reason": correction.approval_reason,
    }


def _take_effect(correction: Correction, *, approver: Any, now: datetime) -> CorrectionSpec | None:
    """Make the latest version the one in force. Returns the spec that was in force before."""
    before = CorrectionSpec.model_validate(correction.effective_spec) if correction.effective_spec else None
    spec = CorrectionSpec.model_validate(correction.spec)
    correction.effective_spec = correction.spec
    correction.effective_version = correction.version
    correction.span_start, correction.span_end = spec.bounds()
    correction.state = "active"
    correction.applied_at = now
    user, name = _user_name(approver) if approver is not None else (None, "")
    correction.approved_by, correction.approved_by_name = user, name
    return before


def correction_create(*, actor: Any, data: Any, note: str = "", now: datetime | None = None) -> Correction:
    now = now or timezone.now()
    spec = _validated(data)
    hides = hidden_pages(spec, now=now)
    user, name = _user_name(actor)
    with transaction.atomic():
        correction = Correction(
            spec=spec_document(spec),
            version=1,
            state="pending_approval",
            author=user,
            author_name=name,
            approval_reason="; ".join(hides),
            created_at=now,
            updated_at=now,
        )
        if not hides:
            _take_effect(correction, approver=None, now=now)
        correction.save()
        _new_version(correction, actor=actor, note=note or "created")
        audit_record(actor=actor, action="create", obj=correction, after=_doc(correction), note=note)
        if not hides:
            _mark_recompute([spec], now)
    return correction


def _new_version(correction: Correction, *, actor: Any, note: str) -> CorrectionVersion:
    user, name = _user_name(actor)
    return CorrectionVersion.objects.create(
        correction=correction,
        version=correction.version,
        spec=correction.spec,
        author=user,
        author_name=name,
        note=note,
        approval_reason=correction.approval_reason,
        approved_by_name=correction.approved_by_name
        if correction.effective_version == correction.version
        else "",
        approved_at=correction.applied_at
        if correction.effective_version == correction.version and correction.approved_by_name
        else None,
    )


def _locked(correction_id: int) -> Correction:
    correction = Correction.objects.select_for_update().filter(pk=correction_id).first()
    if correction is None or correction.state == "deleted":
        raise NotFound("no such correction")
    return correction


def correction_update(
    *, actor: Any, correction_id: int, data: Any, note: str = "", now: datetime | None = None
) -> Correction:
    """A new version; in force at once unless it would hide an ongoing page."""
    now = now or timezone.now()
    spec = _validated(data)
    hides = hidden_pages(spec, now=now)
    user, name = _user_name(actor)
    with transaction.atomic():
        correction = _locked(correction_id)
        before = _doc(correction)
        document = spec_document(spec)
        if document == correction.spec and correction.state == "active":
            return correction  # nothing changed: no new version
        correction.spec = document
        correction.version += 1
        correction.author, correction.author_name = user, name
        correction.approval_reason = "; ".join(hides)
        correction.updated_at = now
        previous = None
        if hides:
            correction.state = "pending_approval"  # the version in force (if any) stays in force
        else:
            previous = _take_effect(correction, approver=None, now=now)
        correction.save()
        _new_version(correction, actor=actor, note=note)
        audit_record(
            actor=actor, action="update", obj=correction, before=before, after=_doc(correction), note=note
        )
        if not hides:
            _mark_recompute([spec] + ([previous] if previous else []), now)
    return correction


def correction_approve(
    *, actor: Any, correction_id: int, note: str = "", now: datetime | None = None
) -> Correction:
    """An approver (not the version's author) puts the pending version in force."""
    now = now or timezone.now()
    if not has_role(actor, APPROVER):
        raise Forbidden("only an approver may approve a correction")
    with transaction.atomic():
        correction = _locked(correction_id)
        if correction.state != "pending_approval":
            raise IllegalTransition(
                f"the correction is {correction.state}, not pending approval",
                problems=[{"path": "state", "message": correction.state}],
            )
        if correction.author_id is not None and correction.author_id == getattr(actor, "pk", None):
            raise Forbidden("the author of a correction cannot approve it")
        before = _doc(correction)
        previous = _take_effect(correction, approver=actor, now=now)
        correction.updated_at = now
        correction.save()
        CorrectionVersion.objects.filter(correction=correction, version=correction.version).update(
            approved_by_name=correction.approved_by_name, approved_at=now
        )
        audit_record(
            actor=actor, action="approve", obj=correction, before=before, after=_doc(correction), note=note
        )
        current = CorrectionSpec.model_validate(correction.spec)
        _mark_recompute([current] + ([previous] if previous else []), now)
    return correction


def correction_reject(
    *, actor: Any, correction_id: int, note: str = "", now: datetime | None = None
) -> Correction:
    """An approver refuses the pending version; a version in force before it stays in force."""
    now = now or timezone.now()
    if not has_role(actor, APPROVER):
        raise Forbidden("only an approver may reject a correction")
    with transaction.atomic():
        correction = _locked(correction_id)
        if correction.state != "pending_approval":
            raise IllegalTransition(
                f"the correction is {correction.state}, not pending approval",
                problems=[{"path": "state", "message": correction.state}],
            )
        before = _doc(correction)
        correction.state = "active" if correction.effective_spec else "rejected"
        correction.updated_at = now
        correction.save()
        audit_record(
            actor=actor, action="reject", obj=correction, before=before, after=_doc(correction), note=note
        )
    return correction


def correction_delete(*, actor: Any, correction_id: int, note: str = "", now: datetime | None = None) -> None:
    """Stop excluding (soft delete); the budgets of the minutes it excluded are recomputed."""
    now = now or timezone.now()
    with transaction.atomic():
        correction = _locked(correction_id)
        before = _doc(correction)
        previous = (
            CorrectionSpec.model_validate(correction.effective_spec) if correction.effective_spec else None
        )
        correction.state = "deleted"
        correction.deleted_at = now
        correction.updated_at = now
        correction.effective_spec = None
        correction.save()
        audit_record(actor=actor, action="delete", obj=correction, before=before, note=note)
        if previous is not None:
            _mark_recompute([previous], now)
