"""Reads of the budget engine. The release-facing ones (`service_budget_status`,
`release_budget_check`) are the small API that routing's release gates use: routing never reads
our tables directly (docs/budget.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from controlplane.errors import NotFound, ValidationFailed
from slo.budget.buckets import floor_hour
from slo.budget.policy import PolicyRules, SloBudget, change_allowed, service_state
from slo.engine import PERIOD, TIER_STATUS, alert_tiers_for, error_budget_ratio
from slo.models import Service, Slo
from slo.models.budget import (
    AlertEvent,
    AlertState,
    BudgetHour,
    BudgetMinute,
    BudgetPolicy,
    CostModel,
    CostRollup,
    SloStatus,
    SloStatusPoint,
)
from slo.spec import SloSpec

# A status older than this many evaluation intervals is stale: no verdict, not the old one.
STALE_INTERVALS = 5
# Recent telemetry: when every minute of the newest 5 is missing (no data at all, which is not
# zero traffic: gateways report quiet minutes as 0), the source is down or far behind, and the SLO
# has no current verdict. 5 minutes is beyond the usual pull lag (2 minutes) and push interval; a
# young SLO with little history but fresh minutes is not affected.
RECENT_WINDOW = "5m"


def status_stale_after_s() -> float:
    """Seconds after which an SLO's status is stale (`STALE_INTERVALS` evaluation intervals): the
    release gate and the dashboard's pages both go by it."""
    return STALE_INTERVALS * settings.EVALUATION_INTERVAL_S


def policy_rules_for(*, service: Service | None) -> tuple[PolicyRules, str]:
    """The service's own policy, else the stored default, else the built-in default."""
    policy = None
    if service is not None:
        policy = BudgetPolicy.objects.filter(service=service).first()
    source = "service"
    if policy is None:
        policy = BudgetPolicy.objects.filter(service__isnull=True).first()
        source = "default"
    if policy is None:
        return PolicyRules(), "built-in"
    return (
        PolicyRules(
            low_remaining_ratio=policy.low_remaining_ratio,
            low_extra_approvals=policy.low_extra_approvals,
            exhausted_remaining_ratio=policy.exhausted_remaining_ratio,
            freeze_allowed_change_kinds=tuple(policy.freeze_allowed_change_kinds),
            unknown_blocks=policy.unknown_blocks,
        ),
        source,
    )


def service_budget_status(*, service_name: str, now: datetime | None = None) -> dict[str, Any]:
    """The budget state of a service for release gates.

    Returns `{service, state (ok|low|exhausted|unknown), frozen, required_extra_approvals,
    allowed_change_kinds, reasons, policy, policy_source, paging_slos, data_quality, slos: [...]}`.
    A status older than 5 evaluation intervals counts as unknown (`stale`: the engine may be down),
    and so does an SLO whose newest 5 minutes of telemetry are all missing (`telemetry_missing`:
    the source is down or far behind); their `remaining` is still shown.
    """
    now = now or timezone.now()
    service = Service.objects.filter(name=service_name).first()
    if service is None:
        raise NotFound(f"no service named {service_name!r}")
    rules, source = policy_rules_for(service=service)
    slos = list(
        Slo.objects.filter(service=service, archived_at__isnull=True)
        .select_related("status")
        .order_by("name")
    )
    paging = set(
        AlertState.objects.filter(
            service=service, kind="burn_rate", severity="page", firing=True
        ).values_list("slo_id", flat=True)
    )
    stale_before = now - timedelta(seconds=status_stale_after_s())
    budgets, rows = [], []
    for slo in slos:
        status = getattr(slo, "status", None)
        evaluated = status is not None and status.evaluated_at is not None
        stale = not evaluated or status.evaluated_at < stale_before
        data_quality = (
            "stale" if stale and evaluated else ("not_evaluated" if not evaluated else status.data_quality)
        )
        if evaluated and not stale and data_quality == "ok":
            recent = (status.windows or {}).get(RECENT_WINDOW) or {}
            if recent and recent.get("missing_minutes", 0) >= recent.get("minutes", 5):
                data_quality = "telemetry_missing"
        remaining = None if stale or status is None else status.error_budget_remaining
        budgets.append(SloBudget(slo.name, remaining, data_quality, slo.pk in paging))
        rows.append(
            {
                "id": slo.pk,
                "name": slo.name,
                "remaining": remaining,
                "data_quality": data_quality,
                "alert_state": status.alert_state if evaluated else "unknown",
                "paging": slo.pk in paging,
                "evaluated_at": status.evaluated_at if evaluated else None,
            }
        )
    verdict = service_state(budgets, rules)
    qualities = {b.data_quality for b in budgets}
    return {
        "service": service.name,
        "state": verdict.state,
        "frozen": verdict.frozen,
        "required_extra_approvals": verdict.required_extra_approvals,
        "allowed_change_kinds": list(verdict.allowed_change_kinds),
        "reasons": verdict.reasons,
        "policy": rules.as_dict(),
        "policy_source": source,
        "paging_slos": [r["name"] for r in rows if r["paging"]],
        "data_quality": "ok" if qualities <= {"ok"} and budgets else "degraded",
        "slos": rows,
        "corrections": _corrections_in_periods(slos, now),
        "evaluated_at": now,
    }


def _corrections_in_periods(slos: list[Slo], now: datetime) -> list[dict[str, Any]]:
    """The status corrections that excluded minutes of these SLOs within their current periods:
    a budget a correction changed says so, with who wrote and who approved it."""
    from slo.corrections.selectors import corrections_applied
    from slo.engine.evaluate import period_minutes

    if not slos:
        return []
    longest = max(period_minutes(SloSpec.model_validate(slo.spec), now)[0] for slo in slos)
    return corrections_applied(
        slos=[(slo.pk, slo.spec) for slo in slos], start=now - timedelta(minutes=longest), end=now
    )


def release_budget_check(
    *, service_name: str, change_kind: str = "normal", now: datetime | None = None
) -> dict[str, Any]:
    """What a release gate asks: may this kind of change go out now, and with how many extra
    approvals? `{allowed, reason, required_extra_approvals, paging_slos, budget}`."""
    status = service_budget_status(service_name=service_name, now=now)
    rules, _source = policy_rules_for(service=Service.objects.get(name=service_name))
    verdict = service_state(
        [SloBudget(s["name"], s["remaining"], s["data_quality"], s["paging"]) for s in status["slos"]], rules
    )
    allowed, reason = change_allowed(verdict, change_kind)
    return {
        "allowed": allowed,
        "reason": reason,
        "required_extra_approvals": verdict.required_extra_approvals if allowed else 0,
        "paging_slos": status["paging_slos"],
        "budget": status,
    }


def slo_status_get(*, slo_id: int) -> SloStatus | None:
    return SloStatus.objects.filter(slo_id=slo_id).first()


def firing_alerts(*, slo_id: int | None = None, service: Service | None = None) -> QuerySet[AlertState]:
    """Alerts firing now (of one SLO or one service when given)."""
    alerts = AlertState.objects.filter(firing=True)
    if slo_id is not None:
        alerts = alerts.filter(slo_id=slo_id)
    if service is not None:
        alerts = alerts.filter(service=service)
    return alerts


def status_points(*, slo_id: int, start: datetime, end: datetime) -> QuerySet[SloStatusPoint]:
    """An SLO's status history in `[start, end)`, oldest first."""
    return SloStatusPoint.objects.filter(slo_id=slo_id, at__gte=start, at__lt=end).order_by("at")


def cost_rollups(
    *, service: Service, route: str, resolution: str, start: datetime, end: datetime
) -> QuerySet[CostRollup]:
    """A service's cost rollups of one route and resolution in `[start, end)`, oldest first."""
    return CostRollup.objects.filter(
        service=service, route=route, resolution=resolution, bucket_start__gte=start, bucket_start__lt=end
    ).order_by("bucket_start")


def alert_events(*, service: str | None = None) -> QuerySet[AlertEvent]:
    events = AlertEvent.objects.select_related("service", "slo")
    return events.filter(service__name=service) if service else events


def cost_model_current(*, at: datetime | None = None) -> CostModel | None:
    """The cost model in force at `at`: the highest version whose `effective_from` has come."""
    at = at or timezone.now()
    return CostModel.objects.filter(effective_from__lte=at).order_by("-version").first()


TIMESERIES_METRICS = ("sli", "burn_rate", "budget_remaining")
MAX_POINTS = 11_000


def slo_timeseries(
    *, slo: Slo, metric: str, resolution: str, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """Chart points `[{"t", "value", ...}]` oldest first.

    - `sli` / `burn_rate` per minute or hour come from the buckets: each point is that bucket's
      own SLI (good/valid) or burn rate ((bad/valid)/(1 - objective)); None without traffic.
    - `budget_remaining` comes from the status history (a point every 5 minutes; `hour` keeps the
      last point of each hour).
    """
    problems = []
    if metric not in TIMESERIES_METRICS:
        problems.append({"path": "metric", "message": f"one of {', '.join(TIMESERIES_METRICS)}"})
    if resolution not in ("minute", "hour"):
        problems.append({"path": "resolution", "message": "minute or hour"})
    end = end or timezone.now()
    default_span = timedelta(hours=6) if resolution == "minute" else timedelta(days=28)
    start = start or end - default_span
    if start >= end:
        problems.append({"path": "start", "message": "start must be before end"})
    step = timedelta(minutes=1) if resolution == "minute" else timedelta(hours=1)
    if not problems and (end - start) / step > MAX_POINTS:
        problems.append(
            {"path": "start", "message": f"at most {MAX_POINTS} points; narrow the range or use hour"}
        )
    if problems:
        raise ValidationFailed("invalid time series request", problems=problems)
    if metric == "budget_remaining":
        points = SloStatusPoint.objects.filter(slo_id=slo.pk, at__gte=start, at__lt=end).order_by("at")
        out: dict[datetime, dict[str, Any]] = {}
        for p in points.values("at", "error_budget_remaining", "data_quality"):
            key = floor_hour(p["at"]) if resolution == "hour" else p["at"]
            out[key] = {"t": key, "value": p["error_budget_remaining"], "data_quality": p["data_quality"]}
        return list(out.values())
    budget = error_budget_ratio(slo.objective)
    if resolution == "minute":
        rows = BudgetMinute.objects.filter(slo_id=slo.pk, minute__gte=start, minute__lt=end).order_by(
            "minute"
        )
        values = rows.values_list("minute", "good", "valid")
    else:
        rows = BudgetHour.objects.filter(slo_id=slo.pk, hour__gte=start, hour__lt=end).order_by("hour")
        values = rows.values_list("hour", "good", "valid")
    series = []
    for t, good, valid in values:
        if valid <= 0:
            value = None
        elif metric == "sli":
            value = min(good, valid) / valid
        else:
            value = ((valid - min(good, valid)) / valid) / budget
        series.append({"t": t, "value": value, "valid": valid})
    return series


def slo_status_document(*, status: SloStatus, spec: SloSpec) -> dict[str, Any]:
    """The stored (compact) status expanded for people and the API: every window with its sums,
    SLI, burn rate and data quality, every alert tier with its threshold and evidence."""
    windows = {}
    for name, stored in status.windows.items():
        good, valid = stored["good"], stored["valid"]
        windows[name] = {
            **stored,
            "sli": (min(good, valid) / valid) if valid > 0 else None,
            "burn_rate": status.burn_rates.get(name)
            if name != PERIOD
            else (
                ((valid - min(good, valid)) / valid) / error_budget_ratio(spec.objective)
                if valid > 0
                else None
            ),
        }
    tiers = []
    for tier, code in zip(alert_tiers_for(spec), status.tiers, strict=False):
        long_w, short_w = windows.get(tier.long_window, {}), windows.get(tier.short_window, {})
        tiers.append(
            {
                "severity": tier.severity,
                "budget_percent": tier.budget_percent,
                "long_window": tier.long_window,
                "short_window": tier.short_window,
                # The effective threshold, never below 1x, and what scaling to the window gave.
                "burn_rate_threshold": tier.burn_rate_threshold,
                "scaled_burn_rate_threshold": tier.scaled_burn_rate_threshold,
                "threshold_raised": tier.threshold_raised,
                "long_burn_rate": long_w.get("burn_rate"),
                "short_burn_rate": short_w.get("burn_rate"),
                "long_data_quality": long_w.get("data_quality"),
                "short_data_quality": short_w.get("data_quality"),
                "status": TIER_STATUS[code],
            }
        )
    return {
        "slo": status.slo_id,
        "evaluated_at": status.evaluated_at,
        "slo_version": status.slo_version,
        "sli": status.sli,
        "data_quality": status.data_quality,
        "error_budget_total": status.error_budget_total,
        "error_budget_consumed": status.error_budget_consumed,
        "error_budget_remaining": status.error_budget_remaining,
        "burn_rates": status.burn_rates,
        "windows": windows,
        "tiers": tiers,
        "alert_state": status.alert_state,
        "time_to_exhaustion_s": status.time_to_exhaustion_s,
        "time_to_exhaustion_basis": status.time_to_exhaustion_basis,
        "period_start": status.period_start,
        "period_end": status.period_end,
        "no_data_reason": status.no_data_reason,
    }
