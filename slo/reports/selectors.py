"""Reads of the reports: stored snapshots, and the data a new report is computed from.

The budget figures come from the same bucket reads and the same engine as the SLO status
(`slo.budget.buckets.window_sums_for` + `slo.engine.evaluate_batch`): the report's calendar period
is simply the period column of the batch. So a report over a period and the status of an SLO whose
window is that period agree to the last bit (tests/slo/reports/test_numbers.py checks it).

Every read is bounded by the period's end, and the SLO definition used is the version in force at
the period's end, so regenerating a past period later gives the same numbers (as long as the
telemetry it read is retained: per-minute contract series are kept TELEMETRY_MINUTE_RETENTION_DAYS,
see docs/reports.md).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from django.db.models import Count, FloatField, Max, Min, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Least, TruncDate

from controlplane.errors import NotFound
from slo import contract as c
from slo.budget.buckets import window_sums_for
from slo.budget.cost import Prices
from slo.budget.selectors import cost_model_current
from slo.corrections.selectors import corrections_applied
from slo.engine import DATA_QUALITY, batch_params, calendar_period_bounds, error_budget_ratio, evaluate_batch
from slo.engine import minutes_between as engine_minutes_between
from slo.models import Service, Slo, SloVersion
from slo.models.budget import AlertEvent, BudgetHour, CostRollup, SloStatus
from slo.models.reports import Report, ReportDelivery, ReportSchedule
from slo.models.telemetry import SeriesMinute, TelemetrySource
from slo.reports import compute, cost, sections
from slo.spec import SloSpec

logger = logging.getLogger(__name__)

# Sections every report shows, available or not (their providers live in other apps).
EXPECTED_SECTIONS = ("releases",)
SERIES_NAMES = (
    c.REQUESTS_TOTAL,
    c.FALLBACKS_TOTAL,
    c.CACHE_LOOKUPS_TOTAL,
    f"{c.REQUEST_DURATION}_bucket",
    f"{c.REQUEST_DURATION}_count",
)


def report_queryset() -> QuerySet[Report]:
    """Reports newest period first; list views defer the (large) numbers."""
    return Report.objects.all().order_by("-period_start", "-generated_at", "-id")


def report_get(*, report_id: int | str) -> Report:
    report = Report.objects.filter(pk=int(report_id) if str(report_id).isdigit() else -1).first()
    if report is None:
        raise NotFound("no such report")
    return report


def report_schedule_queryset() -> QuerySet[ReportSchedule]:
    return ReportSchedule.objects.select_related("periodic_task", "periodic_task__crontab").order_by("name")


def report_deliveries(*, report: Report) -> list[ReportDelivery]:
    return list(report.deliveries.order_by("created_at", "id"))


def _no_data_reason(
    figures: compute.BudgetFigures, minutes: int, status_reason: Any
) -> dict[str, Any] | None:
    """Why a report period has no SLI: no traffic (minutes present, no events), else the status's
    current reason, else the missing minutes."""
    if figures.sli is not None:
        return None
    if figures.missing_minutes < minutes and figures.valid_events <= 0:
        return {
            "code": "no_traffic",
            "message": "telemetry is there but recorded no events: no traffic",
            "since": None,
        }
    if isinstance(status_reason, dict):
        return status_reason
    return {
        "code": "missing",
        "message": f"{figures.missing_minutes} of {minutes} minutes without telemetry",
        "since": None,
    }


def scope_services(*, scope_kind: str, scope_value: str) -> list[Service]:
    """The services a scope covers: one service by name, or every service a team owns."""
    if scope_kind == "service":
        return list(Service.objects.filter(name=scope_value))
    return list(Service.objects.filter(owner=scope_value).order_by("name"))


# ----------------------------------------------------------------------------- engine figures


def _figures(result: Any) -> list[compute.BudgetFigures]:
    period = -1
    return [
        compute.BudgetFigures(
            good=float(result.sums.good[row, period]),
            valid=float(result.sums.valid[row, period]),
            bad=float(result.bad[row, period]),
            valid_events=float(result.sums.valid_events[row, period]),
            missing_minutes=int(result.sums.missing_minutes[row, period]),
            sli=compute.finite(result.sli[row, period]),
            burn_rate=compute.finite(result.burn_rate[row, period]),
            data_quality=DATA_QUALITY[int(result.data_quality[row, period])],
            error_budget_total=compute.finite(result.error_budget_total[row]),
            error_budget_remaining_ratio=compute.finite(result.error_budget_remaining_ratio[row]),
        )
        for row in range(result.params.n_slos)
    ]


def slo_budget_figures(
    *,
    slo_ids: list[int],
    specs: list[SloSpec],
    end: datetime,
    period_minutes: list[int],
    total_minutes: list[int],
    bounds: list[tuple[datetime, datetime] | None],
) -> list[compute.BudgetFigures]:
    """Budget figures of each SLO over `[end - period_minutes[i], end)`, read and evaluated exactly
    like an evaluation at `end` (the period column of `slo.budget.evaluation.slo_evaluate`)."""
    if not slo_ids:
        return []
    params = batch_params(specs, now=end)
    params = dataclasses.replace(
        params,
        period_window_min=np.asarray(period_minutes, dtype=np.int64),
        period_total_min=np.asarray(total_minutes, dtype=np.int64),
        period_bounds=tuple(bounds),
    )
    sums, _queries = window_sums_for(slo_ids, params, end)
    return _figures(evaluate_batch(sums, params))


def _window_at_end(spec: SloSpec, end: datetime) -> tuple[int, int, tuple[datetime, datetime] | None, str]:
    """The SLO's own window as its status would show it at the period's end."""
    if spec.window.type == "rolling":
        minutes = spec.window.days * 1440
        return minutes, minutes, None, f"rolling {spec.window.days}d"
    # A calendar SLO at `end` has just started a new period: report the one that ends with `end`'s
    # last instant (the status an evaluation one tick before `end` would hold, plus that tick).
    start, stop = calendar_period_bounds(
        spec.window.unit, spec.window.timezone, end - timedelta(microseconds=1), spec.window.start
    )
    return (
        engine_minutes_between(start, end),
        engine_minutes_between(start, stop),
        (start, stop),
        f"calendar {spec.window.unit} ({spec.window.timezone})",
    )


def slo_versions_at(*, slos: list[Slo], at: datetime) -> dict[int, tuple[int, dict[str, Any]]]:
    """slo id -> (version, spec) in force at `at`: the newest version created before it, else (an SLO
    created after the period, whose history was backfilled) its first version. Both are fixed once
    `at` has passed, so a regenerated report uses the same definition."""
    latest = dict(
        SloVersion.objects.filter(slo__in=slos, created_at__lt=at)
        .values("slo_id")
        .annotate(version=Max("version"))
        .values_list("slo_id", "version")
    )
    first = dict(
        SloVersion.objects.filter(slo__in=slos)
        .values("slo_id")
        .annotate(version=Min("version"))
        .values_list("slo_id", "version")
    )
    wanted = Q(pk__in=[])
    for slo_id, version in {**first, **latest}.items():
        wanted |= Q(slo_id=slo_id, version=version)
    return {v.slo_id: (v.version, v.spec) for v in SloVersion.objects.filter(wanted)}


# ----------------------------------------------------------------------------- other sections


def alert_rows(
    *, service_ids: list[int], start: datetime, end: datetime
) -> tuple[list[compute.AlertRow], list[int]]:
    """Transitions in `[start, end)` plus each alert's last transition before `start`, and the
    service id of each."""
    scope = AlertEvent.objects.filter(service_id__in=service_ids)
    before = scope.filter(at__lt=start).values("state_key").annotate(last=Max("at"))
    wanted = Q(at__gte=start, at__lt=end)
    for row in before:
        wanted |= Q(state_key=row["state_key"], at=row["last"])
    events = (
        scope.filter(wanted)
        .order_by("at", "id")
        .values_list("state_key", "slo_id", "kind", "severity", "state", "at", "service_id")
    )
    rows = list(events)
    return [compute.AlertRow(*row[:6]) for row in rows], [row[6] for row in rows]


def series_totals(
    *, services: list[str], start: datetime, end: datetime
) -> tuple[dict[str, list[compute.SeriesTotal]], dict[str, int]]:
    """Contract series summed over the period in SQL, per service; and how many minutes of the
    period each service has series for (the coverage: minute series are kept about a week)."""
    first, stop = int(start.timestamp() // 60), int(end.timestamp() // 60)
    rows = SeriesMinute.objects.filter(service__in=services, minute__gte=first, minute__lt=stop)
    totals: dict[str, list[compute.SeriesTotal]] = defaultdict(list)
    grouped = (
        rows.filter(name__in=SERIES_NAMES)
        .values("service", "source", "tier", "name", "labels")
        .annotate(value=Sum("value"))
        .order_by("service", "source", "tier", "name", "labels")
    )
    for row in grouped:
        totals[row["service"]].append(
            compute.SeriesTotal(row["source"], row["tier"], row["name"], row["labels"], float(row["value"]))
        )
    coverage = dict(
        rows.values("service")
        .annotate(minutes=Count("minute", distinct=True))
        .values_list("service", "minutes")
    )
    return totals, coverage


def source_names(sources: list[str]) -> dict[str, dict[str, str]]:
    """Names and regions of telemetry sources: our Prometheus sources, plus resolvers (gateways)."""
    out = sections.resolve_sources(sources)
    prom_ids = [int(s.split(":", 1)[1]) for s in sources if s.startswith("prometheus:") and s[11:].isdigit()]
    for source in TelemetrySource.objects.filter(pk__in=prom_ids):
        out[source.source_key] = {"name": source.name, "region": source.region}
    return out


def daily_sums(
    *, slo_ids: list[int], start: datetime, end: datetime, time_zone: str
) -> dict[int, list[tuple[date, float, float]]]:
    """Per SLO and local day: sums of the hourly budget buckets starting in `[start, end)`, grouped
    in SQL (a month of 100 SLOs is 3,100 rows instead of 74,400)."""
    out: dict[int, list[tuple[date, float, float]]] = defaultdict(list)
    rows = (
        BudgetHour.objects.filter(slo_id__in=slo_ids, hour__gte=start, hour__lt=end)
        .annotate(day=TruncDate("hour", tzinfo=ZoneInfo(time_zone)))
        .values("slo_id", "day")
        .annotate(good=Sum(Least("good", "valid")), valid=Sum("valid"))
        .order_by("slo_id", "day")
    )
    for row in rows:
        out[row["slo_id"]].append((row["day"], row["good"], row["valid"]))
    return out


def cost_rows(*, service_ids: list[int], start: datetime, end: datetime) -> dict[int, list[cost.CostRow]]:
    """Hourly cost rollups of the period. Per hour only where the figures need it (`all`, with the
    three figures used, and `cache`); other routes summed in SQL."""
    out: dict[int, list[cost.CostRow]] = defaultdict(list)
    rows = CostRollup.objects.filter(
        service_id__in=service_ids, resolution="hour", bucket_start__gte=start, bucket_start__lt=end
    )
    figures = ("cost_per_cache_hit_usd", "saved_per_hit_usd", "net_saving_usd")
    hourly = (
        rows.filter(route__in=["all", "cache"])
        .annotate(**{f"f_{name}": Cast(KT(f"figures__{name}"), FloatField()) for name in figures})
        .order_by("bucket_start", "route")
        .values_list(
            "service_id",
            "route",
            "bucket_start",
            "cost_model_version",
            "requests",
            "cost_usd",
            *[f"f_{name}" for name in figures],
        )
    )
    for row in hourly:
        out[row[0]].append(cost.CostRow(*row[1:6], dict(zip(figures, row[6:], strict=True))))
    summed = (
        rows.exclude(route__in=["all", "cache"])
        .values("service_id", "route")
        .annotate(requests=Sum("requests"), cost_usd=Sum("cost_usd"), version=Max("cost_model_version"))
        .order_by("service_id", "route")
    )
    for row in summed:
        out[row["service_id"]].append(
            cost.CostRow(row["route"], start, row["version"], row["requests"], row["cost_usd"], {})
        )
    return out


def _slo_target(slo_id: int, spec: SloSpec) -> compute.SloTarget:
    threshold_s = None
    if spec.sli.kind == "latency" and spec.sli.threshold_ms is not None:
        from decimal import Decimal

        threshold_s = float(Decimal(repr(float(spec.sli.threshold_ms))) / 1000)
    return compute.SloTarget(slo_id, spec.sli.kind, spec.tier, threshold_s)


# ----------------------------------------------------------------------------- the report


def report_numbers(*, scope_kind: str, scope_value: str, period: compute.ReportPeriod) -> dict[str, Any]:
    """Every number of one report, JSON-ready. Deterministic for stored data up to `period.end`."""
    start, end = period.start, period.end
    services = scope_services(scope_kind=scope_kind, scope_value=scope_value)
    service_ids = [s.pk for s in services]
    slos = list(
        Slo.objects.filter(service_id__in=service_ids)
        .filter(Q(archived_at__isnull=True) | Q(archived_at__gt=start))
        .order_by("service__name", "name")
    )
    versions = slo_versions_at(slos=slos, at=end)
    rows: list[tuple[Slo, int, SloSpec]] = []
    for slo in slos:
        if slo.pk not in versions:
            continue  # no stored version (cannot happen through the services)
        version, doc = versions[slo.pk]
        try:
            rows.append((slo, version, SloSpec.model_validate(doc)))
        except ValueError:
            logger.error(
                "SLO %s version %s has an invalid stored spec; left out of the report", slo.pk, version
            )
    ids = [slo.pk for slo, _, _ in rows]
    specs = [spec for _, _, spec in rows]
    n = len(rows)
    this_period = slo_budget_figures(
        slo_ids=ids,
        specs=specs,
        end=end,
        period_minutes=[period.minutes] * n,
        total_minutes=[period.minutes] * n,
        bounds=[(start, end)] * n,
    )
    previous_minutes = engine_minutes_between(period.previous_start, period.previous_end)
    previous = slo_budget_figures(
        slo_ids=ids,
        specs=specs,
        end=period.previous_end,
        period_minutes=[previous_minutes] * n,
        total_minutes=[previous_minutes] * n,
        bounds=[(period.previous_start, period.previous_end)] * n,
    )
    windows = [_window_at_end(spec, end) for spec in specs]
    at_end = slo_budget_figures(
        slo_ids=ids,
        specs=specs,
        end=end,
        period_minutes=[w[0] for w in windows],
        total_minutes=[w[1] for w in windows],
        bounds=[w[2] for w in windows],
    )
    days_by_slo = daily_sums(slo_ids=ids, start=start, end=end, time_zone=period.time_zone)

    alerts, alert_services = alert_rows(service_ids=service_ids, start=start, end=end)
    episodes_by_service: dict[int, list[compute.AlertRow]] = defaultdict(list)
    for event, service_id in zip(alerts, alert_services, strict=True):
        episodes_by_service[service_id].append(event)
    totals, coverage = series_totals(services=[s.name for s in services], start=start, end=end)
    sources = source_names(sorted({t.source for items in totals.values() for t in items}))
    costs = cost_rows(service_ids=service_ids, start=start, end=end)
    model = cost_model_current(at=end - timedelta(microseconds=1))
    prices = Prices.model_validate(model.prices) if model is not None else None
    period_hours = period.minutes / 60
    slo_names = {slo.pk: slo.name for slo, _, _ in rows}
    # why a period without data has none: the status's reason as of this report (slo.budget.nodata)
    status_reasons = dict(SloStatus.objects.filter(slo_id__in=ids).values_list("slo_id", "no_data_reason"))

    out_services = []
    for service in services:
        episodes = compute.alert_episodes(episodes_by_service.get(service.pk, []), start=start, end=end)
        for episode in episodes:
            episode["slo"] = slo_names.get(episode["slo_id"]) if episode["slo_id"] else None
        slo_items = []
        for index, (slo, version, spec) in enumerate(rows):
            if slo.service_id != service.pk:
                continue
            budget_ratio = error_budget_ratio(spec.objective)
            objective_ratio = 1.0 - budget_ratio
            current, before, window = this_period[index], previous[index], at_end[index]
            window_bounds = windows[index][2]
            cells = compute.bad_events_by_series(_slo_target(slo.pk, spec), totals.get(service.name, []))
            slo_episodes = [e for e in episodes if e["slo_id"] == slo.pk]
            slo_items.append(
                {
                    "id": slo.pk,
                    "name": slo.name,
                    "tier": spec.tier,
                    "sli_kind": spec.sli.kind,
                    "slo_version": version,
                    "objective_percent": spec.objective,
                    "budgeting_method": spec.budgeting_method,
                    "period": current.as_dict(objective_ratio),
                    "no_data_reason": _no_data_reason(current, period.minutes, status_reasons.get(slo.pk)),
                    "previous_period": before.as_dict(objective_ratio),
                    "burn_trend": compute.burn_trend(current.burn_rate, before.burn_rate),
                    "window_at_end": {
                        "window": windows[index][3],
                        "start": compute.iso(window_bounds[0]) if window_bounds else None,
                        "end": compute.iso(window_bounds[1]) if window_bounds else None,
                        **window.as_dict(objective_ratio),
                    },
                    "daily": compute.daily_points(
                        days_by_slo.get(slo.pk, []),
                        time_zone=period.time_zone,
                        start=start,
                        end=end,
                        error_budget_ratio=budget_ratio,
                    ),
                    "alerts": compute.alert_summary(slo_episodes),
                    "consumers": compute.top_consumers(
                        cells,
                        sources=sources,
                        error_budget_total=current.error_budget_total
                        if spec.budgeting_method == "occurrences"
                        else None,
                    ),
                }
            )
        out_services.append(
            {
                "name": service.name,
                "display_name": service.display_name,
                "owner": service.owner,
                "service_class": service.service_class,
                "slos": slo_items,
                "alert_episodes": episodes,
                "alerts": compute.alert_summary(episodes),
                "sections": {
                    name: sections.section_data(name, services=[service.name], start=start, end=end)
                    for name in sorted(set(sections.registered_sections()) | set(EXPECTED_SECTIONS))
                },
                "cost": cost.cost_summary(costs.get(service.pk, []), period_hours=period_hours),
                "sla": compute.sla_section(totals.get(service.name, []), prices, hours=period_hours),
                "sla_cost_model_version": model.version if model is not None else None,
                # Status corrections that excluded minutes of this service's SLOs in the period.
                "corrections": corrections_applied(
                    slos=[
                        (slo.pk, spec.model_dump(mode="json"))
                        for slo, _, spec in rows
                        if slo.service_id == service.pk
                    ],
                    start=start,
                    end=end,
                ),
                "telemetry_coverage": {
                    "series_minutes": coverage.get(service.name, 0),
                    "period_minutes": period.minutes,
                },
            }
        )
    return {
        "schema_version": compute.SCHEMA_VERSION,
        "scope": {"kind": scope_kind, "value": scope_value, "services": [s.name for s in services]},
        "period": period.as_dict(),
        "summary": compute.report_summary(out_services),
        "services": out_services,
    }
