"""Evaluating composite SLOs: member buckets -> `core` -> budget engine -> status, history, alerts.

A composite reads its members' *budget buckets* (their exact good/valid counts in budget units, the
same rows and SQL the members' own evaluation reads), over the composite's own windows, never the
members' rounded SLIs or statuses, so it does not depend on when the members were evaluated.

The claim is the same conditional update as for SLOs (`evaluated_at < now`), per composite: two
workers given the same instant never both evaluate it, and a replay for the same `now` does nothing.
Alerts go through the SLOs' alert machinery (`slo.budget.alerts.apply_verdicts`): one `AlertState`
per composite and severity (`composite:<id>:<severity>`, kind `composite_burn`), events with
evidence naming the member that burns, the outbox and every notification channel of the
composite's service.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q

from slo.budget.alerts import Verdict, apply_verdicts
from slo.budget.buckets import floor_minute, window_sums_for
from slo.budget.evaluation import HISTORY_STEP_MIN, severity_verdicts
from slo.composites.core import CompositeSums, evaluate_composite
from slo.composites.spec import CompositeSpec
from slo.engine import BatchResult, batch_params
from slo.models.budget import AlertState
from slo.models.composites import Composite, CompositeMember, CompositeStatus, CompositeStatusPoint

logger = logging.getLogger(__name__)

ALERT_KIND = "composite_burn"


@dataclass
class CompositeReport:
    now: datetime
    claimed: int = 0
    evaluated: int = 0
    skipped_invalid: int = 0
    transitions: int = 0
    notifications: int = 0
    firing: list[str] = field(default_factory=list)


def active_composite_ids() -> list[int]:
    return list(
        Composite.objects.filter(archived_at__isnull=True).order_by("pk").values_list("pk", flat=True)
    )


def composite_evaluate_all(*, now: datetime) -> CompositeReport:
    """Evaluate every active composite at `now` (aware; floored to the minute)."""
    return composite_evaluate(composite_ids=active_composite_ids(), now=now)


def _num(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def composite_evaluate(*, composite_ids: Sequence[int], now: datetime) -> CompositeReport:
    """Evaluate these composites at `now`. Idempotent per `now`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = floor_minute(now)
    report = CompositeReport(now=now)
    if not composite_ids:
        return report
    have = set(
        CompositeStatus.objects.filter(composite_id__in=composite_ids).values_list("composite_id", flat=True)
    )
    CompositeStatus.objects.bulk_create(
        [CompositeStatus(composite_id=i) for i in composite_ids if i not in have], ignore_conflicts=True
    )
    for composite_id in composite_ids:
        with transaction.atomic():
            # The claim: only the worker whose update moved the watermark evaluates.
            claimed = (
                CompositeStatus.objects.filter(composite_id=composite_id)
                .filter(Q(evaluated_at__isnull=True) | Q(evaluated_at__lt=now))
                .update(evaluated_at=now)
            )
            if claimed != 1:
                continue
            report.claimed += 1
            composite = (
                Composite.objects.select_related("service")
                .filter(pk=composite_id, archived_at__isnull=True)
                .first()
            )
            if composite is None:
                continue
            try:
                spec = CompositeSpec.model_validate(composite.spec)
            except ValueError:
                logger.error("composite %s has an invalid stored spec; not evaluated", composite_id)
                report.skipped_invalid += 1
                continue
            _evaluate_one(composite, spec, now, report)
    return report


@dataclass(frozen=True)
class _Member:
    slo_id: int
    ref: str
    weight: float
    archived: bool


def _members(composite: Composite) -> list[_Member]:
    rows = (
        CompositeMember.objects.filter(composite=composite)
        .select_related("slo__service")
        .order_by("position")
    )
    return [
        _Member(
            slo_id=row.slo_id,
            ref=f"{row.slo.service.name}/{row.slo.name}",
            weight=row.weight,
            archived=row.slo.archived_at is not None,
        )
        for row in rows
    ]


def composite_compute(
    composite: Composite, spec: CompositeSpec, now: datetime, members: Sequence[_Member] | None = None
) -> tuple[dict[str, Any], BatchResult]:
    """Read the members' buckets and evaluate the composite at `now`; writes nothing."""
    members = _members(composite) if members is None else members
    engine_spec = spec.engine_spec()
    params = batch_params([engine_spec], now=now)
    # The members' sums in the composite's columns: its burn windows and its own period.
    member_params = batch_params([engine_spec] * len(members), now=now)
    member_sums, _queries = window_sums_for([m.slo_id for m in members], member_params, now)
    parts, result = evaluate_composite(member_sums, [m.weight for m in members], spec.aggregation, params)
    return status_document(members, parts, result), result


def status_point(
    composite: Composite, document: dict[str, Any], result: BatchResult, at: datetime
) -> CompositeStatusPoint:
    """The history point of one evaluation, with each member's contribution to the 1h burn."""
    slo_result = result.slo(0)
    one_hour = document["windows"].get("1h", {})
    return CompositeStatusPoint(
        composite=composite,
        at=at,
        sli=_num(slo_result.sli),
        burn_rate_1h=one_hour.get("burn_rate"),
        error_budget_remaining=_num(slo_result.error_budget_remaining_ratio),
        alert_state=slo_result.alert_state,
        data_quality=slo_result.data_quality,
        contributions_1h={str(m["slo_id"]): m["burn_contribution"] for m in one_hour.get("members", [])},
    )


def _evaluate_one(composite: Composite, spec: CompositeSpec, now: datetime, report: CompositeReport) -> None:
    members = _members(composite)
    document, result = composite_compute(composite, spec, now, members)
    slo_result = result.slo(0)
    without_data = members_without_data(members, document)
    CompositeStatus.objects.filter(composite=composite).update(
        composite_version=composite.version,
        sli=_num(slo_result.sli),
        data_quality=slo_result.data_quality,
        error_budget_total=_num(slo_result.error_budget_total),
        error_budget_consumed=_num(slo_result.error_budget_consumed),
        error_budget_remaining=_num(slo_result.error_budget_remaining_ratio),
        burn_rates={name: w["burn_rate"] for name, w in document["windows"].items() if name != "period"},
        windows=document["windows"],
        tiers=document["tiers"],
        alert_state=slo_result.alert_state,
        time_to_exhaustion_s=_num(slo_result.time_to_exhaustion_s),
        time_to_exhaustion_basis=slo_result.time_to_exhaustion_basis,
        period_start=slo_result.period_start,
        period_end=slo_result.period_end,
        members_without_data=without_data,
    )
    if now.minute % HISTORY_STEP_MIN == 0:
        CompositeStatusPoint.objects.bulk_create(
            [status_point(composite, document, result, now)], ignore_conflicts=True
        )
    report.evaluated += 1
    transitions, notifications = _alerts(composite, spec, document, result, now)
    report.transitions += transitions
    report.notifications += notifications
    if slo_result.alert_state in ("page", "ticket"):
        report.firing.append(f"{composite.service.name}/{composite.name}:{slo_result.alert_state}")


def status_document(members: Sequence[_Member], parts: CompositeSums, result: BatchResult) -> dict[str, Any]:
    """Windows (the composite's sums plus every member's part) and alert tiers, JSON-ready."""
    slo_result = result.slo(0).as_dict()
    budget_ratio = float(result.params.error_budget_ratio[0])
    names = result.params.window_names
    wanted = set(slo_result["windows"]) | {"period"}
    windows: dict[str, Any] = {}
    for col, name in enumerate(names):
        if name not in wanted:
            continue
        base = slo_result["period"] if name == "period" else slo_result["windows"][name]
        deciding = int(parts.deciding_member[col])
        rows = []
        for i, member in enumerate(members):
            has = bool(parts.member_has_data[i, col])
            bad_fraction = _num(parts.member_bad_fraction[i, col]) if has else None
            contribution = _num(parts.contribution[i, col]) if has else None
            rows.append(
                {
                    "slo_id": member.slo_id,
                    "slo": member.ref,
                    "weight": member.weight,
                    "has_data": has,
                    "good": float(min(parts.member.good[i, col], parts.member.valid[i, col])),
                    "valid": float(parts.member.valid[i, col]),
                    "events": float(parts.member.valid_events[i, col]),
                    "missing_minutes": int(parts.member.missing_minutes[i, col]),
                    "bad_fraction": bad_fraction,
                    # against the composite's objective, so members compare on one scale
                    "burn_rate": None if bad_fraction is None else bad_fraction / budget_ratio,
                    "burn_contribution": None if contribution is None else contribution / budget_ratio,
                }
            )
        windows[name] = {
            "minutes": base["window_minutes"],
            "good": base["good"],
            "valid": base["valid"],
            "events": base["valid_events"],
            "missing_minutes": base["missing_minutes"],
            "sli": base["sli"],
            "burn_rate": base["burn_rate"],
            "data_quality": base["data_quality"],
            "deciding_member": members[deciding].slo_id if deciding >= 0 else None,
            "members": rows,
        }
    return {"windows": windows, "tiers": slo_result["tiers"]}


def members_without_data(members: Sequence[_Member], document: dict[str, Any]) -> list[dict[str, Any]]:
    """Members lacking data in any window of the status, with those windows: said, never hidden."""
    out = []
    for i, member in enumerate(members):
        windows = [name for name, w in document["windows"].items() if not w["members"][i]["has_data"]]
        if windows:
            out.append(
                {"slo_id": member.slo_id, "slo": member.ref, "archived": member.archived, "windows": windows}
            )
    return out


def _burning_members(document: dict[str, Any], tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each deciding tier: the member with the largest contribution to its long and short window."""
    out = []
    for tier in tiers:
        for side in ("long_window", "short_window"):
            window = document["windows"].get(tier[side])
            if not window:
                continue
            ranked = [m for m in window["members"] if m["burn_contribution"] is not None]
            if not ranked:
                continue
            top = max(ranked, key=lambda m: m["burn_contribution"])
            total = window["burn_rate"] or 0.0
            out.append(
                {
                    "window": tier[side],
                    "slo_id": top["slo_id"],
                    "slo": top["slo"],
                    "burn_rate": top["burn_rate"],
                    "burn_contribution": top["burn_contribution"],
                    "share_of_burn": (top["burn_contribution"] / total) if total else None,
                }
            )
    return out


def _alerts(
    composite: Composite, spec: CompositeSpec, document: dict[str, Any], result: BatchResult, now: datetime
) -> tuple[int, int]:
    prefix = f"composite:{composite.pk}:"
    firing = set(
        AlertState.objects.filter(key__startswith=prefix, kind=ALERT_KIND, firing=True).values_list(
            "key", flat=True
        )
    )
    changes = []
    for severity, verdict in severity_verdicts(result, 0).items():
        key = prefix + severity
        if verdict is None or verdict == (key in firing):
            continue  # unknown never flips; an unchanged verdict is not a transition
        tiers = [t for t in document["tiers"] if t["severity"] == severity]
        decided = [t for t in tiers if t["status"] == ("firing" if verdict else "not_firing")]
        windows = sorted({w for t in decided for w in (t["long_window"], t["short_window"])})
        members = _burning_members(document, decided)
        changes.append(
            Verdict(
                key=key,
                service=(composite.service_id, composite.service.name),
                slo_id=None,
                kind=ALERT_KIND,
                severity=severity,
                verdict=verdict,
                windows=windows,
                evidence={
                    "composite": {
                        "id": composite.pk,
                        "name": composite.name,
                        "service": composite.service.name,
                        "aggregation": spec.aggregation,
                        "objective": spec.objective,
                        "version": composite.version,
                    },
                    "tiers": tiers,
                    "burning_members": members,
                    "burning_member": members[0]["slo"] if members else None,
                },
            )
        )
    transitions, notifications, _queries = apply_verdicts(changes, now=now)
    return transitions, notifications
