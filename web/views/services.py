"""Dashboard page of the slo app: service detail (server-rendered, read-only).

Its charts come from the contract series gateways push (`slo.models.telemetry.SeriesMinute`),
aggregated in SQL so a page reads a few thousand rows whatever the fleet size, and from the cost
model's rollups. Missing data is shown as missing: a chart without a single value says "no data
yet" instead of drawing zeros.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import F, Sum, Value
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from controlplane.lib.charts import (
    STATE_CSS,
    STATE_LABELS,
    Chart,
    bar_figure,
    line_figure,
    percent,
    slo_state,
)
from controlplane.lib.histograms import histogram_quantile
from controlplane.roles import VIEWER
from routing.fleet.decision_selectors import decision_record_queryset
from slo import contract
from slo import selectors as catalog
from slo.budget import selectors as budget
from slo.budget.selectors import status_stale_after_s
from slo.models import Service
from slo.models.telemetry import SeriesMinute
from web.access import role_required
from web.capacity import capacity_context
from web.markers import chart_markers

SERVICE_RANGES = {
    "6h": (timedelta(hours=6), 10),
    "24h": (timedelta(hours=24), 60),
    "7d": (timedelta(days=7), 360),
}


def _labels(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(",") if text else []:
        key, _, value = part.partition("=")
        out[key] = value
    return out


def series_sums(
    *, service: str, names: list[str], start: datetime, end: datetime, step_min: int
) -> list[dict[str, Any]]:
    """Contract series of one service summed over sources into `step_min` buckets, in SQL:
    `[{bucket (epoch minute), name, tier, labels, value}]`."""
    first = int(start.timestamp() // 60)
    stop = int(end.timestamp() // 60)
    rows = (
        SeriesMinute.objects.filter(service=service, name__in=names, minute__gte=first, minute__lt=stop)
        .annotate(bucket=F("minute") / Value(step_min) * Value(step_min))
        .values("bucket", "name", "tier", "labels")
        .annotate(value=Sum("value"))
        .order_by()
    )
    return list(rows)


def _bucket_times(start: datetime, end: datetime, step_min: int) -> list[int]:
    first = int(start.timestamp() // 60) // step_min * step_min
    stop = int(end.timestamp() // 60)
    return list(range(first, stop, step_min))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def service_charts(
    *,
    service: Service,
    start: datetime,
    end: datetime,
    step_min: int,
    markers: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Chart], list[dict[str, Any]]]:
    """Latency, route mix, cache, fallbacks, cost and the stage decomposition of one service, and
    the per-stage table (mean and p95 per tier and stage). `markers` (releases, alerts) go on every
    time chart."""
    marks = {"x_range": (start, end), "markers": markers or []}
    buckets = _bucket_times(start, end, step_min)
    times = [datetime.fromtimestamp(b * 60, tz=UTC) for b in buckets]
    index = {b: i for i, b in enumerate(buckets)}
    names = [
        f"{contract.REQUEST_DURATION}_bucket",
        contract.REQUESTS_TOTAL,
        contract.CACHE_LOOKUPS_TOTAL,
        contract.FALLBACKS_TOTAL,
        f"{contract.STAGE_DURATION}_sum",
        f"{contract.STAGE_DURATION}_count",
        f"{contract.STAGE_DURATION}_bucket",
    ]
    rows = series_sums(service=service.name, names=names, start=start, end=end, step_min=step_min)

    latency: dict[tuple[str, str], dict[int, dict[float, float]]] = defaultdict(lambda: defaultdict(dict))
    routes: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(buckets))
    cache: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(buckets))
    fallbacks: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(buckets))
    stage_sum: dict[tuple[str, str], float] = defaultdict(float)
    stage_count: dict[tuple[str, str], float] = defaultdict(float)
    stage_buckets: dict[tuple[str, str], dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        col = index.get(row["bucket"])
        labels = _labels(row["labels"])
        name, tier, value = row["name"], row["tier"] or "unknown", row["value"] or 0.0
        if name == f"{contract.REQUEST_DURATION}_bucket" and col is not None:
            try:
                le = float(labels.get("le", "nan"))
            except ValueError:
                continue
            hist = latency[(tier, labels.get("route", "?"))][col]
            hist[le] = hist.get(le, 0.0) + value  # summed over outcomes
        elif name == contract.REQUESTS_TOTAL and col is not None:
            routes[labels.get("route", "?")][col] += value
        elif name == contract.CACHE_LOOKUPS_TOTAL and col is not None:
            cache[labels.get("result", "?")][col] += value
        elif name == contract.FALLBACKS_TOTAL and col is not None:
            fallbacks[f"{labels.get('from_route', '?')} → {labels.get('to_route', '?')}"][col] += value
        elif name == f"{contract.STAGE_DURATION}_sum":
            stage_sum[(tier, labels.get("stage", "?"))] += value
        elif name == f"{contract.STAGE_DURATION}_count":
            stage_count[(tier, labels.get("stage", "?"))] += value
        elif name == f"{contract.STAGE_DURATION}_bucket":
            try:
                stage_buckets[(tier, labels.get("stage", "?"))][float(labels.get("le", "nan"))] += value
            except ValueError:
                continue

    charts: dict[str, Chart] = {}
    latency_series = []
    for (tier, route), by_col in sorted(latency.items()):
        ys = [_ms(histogram_quantile(0.95, by_col[c])) if c in by_col else None for c in range(len(buckets))]
        latency_series.append({"name": f"{tier} / {route}", "x": times, "y": ys})
    slo_lines = [
        {
            "value": s.spec["sli"]["threshold_ms"],
            "label": f"{s.name}: {s.spec['sli']['threshold_ms']:g} ms ({s.tier or 'chain'})",
        }
        for s in catalog.active_slos(service=service).filter(sli_kind="latency")
        if isinstance((s.spec or {}).get("sli", {}).get("threshold_ms"), int | float)
    ]
    charts["latency"] = Chart(
        "chart-latency",
        line_figure(
            title="p95 latency by tier and route",
            series=latency_series,
            y_title="ms",
            thresholds=slo_lines[:3],
            **marks,
        ),
        markers=marks["markers"],
        caption="p95 from the request-duration histograms (interpolated within buckets, like Prometheus).",
    )
    charts["routes"] = Chart(
        "chart-routes",
        line_figure(
            title="Route mix (requests answered per route)",
            series=[{"name": route, "x": times, "y": ys} for route, ys in sorted(routes.items())],
            y_title="requests",
            stacked=True,
            **marks,
        ),
        markers=marks["markers"],
    )
    lookups = [sum(cache[r][c] for r in cache) for c in range(len(buckets))]
    hits = [
        cache["hit"][c] + cache["semantic_hit"][c] if "hit" in cache or "semantic_hit" in cache else 0.0
        for c in range(len(buckets))
    ]
    stale = [cache["stale_hit"][c] if "stale_hit" in cache else 0.0 for c in range(len(buckets))]
    charts["cache"] = Chart(
        "chart-cache",
        line_figure(
            title="Cache hit and stale-hit rates",
            series=[
                {
                    "name": "hit rate (fresh + semantic)",
                    "x": times,
                    "y": [hits[c] / lookups[c] * 100 if lookups[c] else None for c in range(len(buckets))],
                },
                {
                    "name": "stale-hit rate",
                    "x": times,
                    "y": [stale[c] / lookups[c] * 100 if lookups[c] else None for c in range(len(buckets))],
                },
            ],
            y_title="% of lookups",
            **marks,
        ),
        markers=marks["markers"],
        caption="All cache layers together; a bucket without lookups has no rate.",
    )
    charts["fallbacks"] = Chart(
        "chart-fallbacks",
        line_figure(
            title="Fallbacks (from → to route)",
            series=[{"name": key, "x": times, "y": ys} for key, ys in sorted(fallbacks.items())],
            y_title="fallbacks",
            **marks,
        ),
        markers=marks["markers"],
    )

    # hourly rollups: at most 168 points for the 7-day range
    resolution = "hour"
    cost_rows = list(
        budget.cost_rollups(
            service=service, route="all", resolution=resolution, start=start, end=end
        ).values_list("bucket_start", "cost_per_request_usd", "figures")
    )
    cost_x = [r[0] for r in cost_rows]
    charts["cost"] = Chart(
        "chart-cost",
        line_figure(
            title=f"Cost per 1,000 inferences and per cache hit (per {resolution})",
            series=[
                {
                    "name": "cost per 1,000 inferences (USD)",
                    "x": cost_x,
                    "y": [r[1] * 1000 if r[1] is not None else None for r in cost_rows],
                    "mode": "lines+markers",
                },
                {
                    "name": "cost per cache hit × 1,000 (USD)",
                    "x": cost_x,
                    "y": [
                        (r[2] or {}).get("cost_per_cache_hit_usd") * 1000
                        if isinstance((r[2] or {}).get("cost_per_cache_hit_usd"), int | float)
                        else None
                        for r in cost_rows
                    ],
                    "mode": "lines+markers",
                },
            ],
            y_title="USD",
            **marks,
        ),
        markers=marks["markers"],
        caption="From the cost model's rollups (all routes). Cost per hit is scaled to 1,000 hits.",
        empty_hint="Cost rollups appear once a cost model exists and usage is reported.",
    )

    tiers = sorted({tier for tier, _stage in stage_count})
    stages = [s for s in contract.STAGES if any((t, s) in stage_count for t in tiers)]
    stage_series = []
    for stage in stages:
        stage_series.append(
            {
                "name": stage,
                "y": [
                    stage_sum[(t, stage)] / stage_count[(t, stage)] * 1000
                    if stage_count.get((t, stage))
                    else None
                    for t in tiers
                ],
            }
        )
    charts["stages"] = Chart(
        "chart-stages",
        bar_figure(
            title="Latency budget by stage (mean per request) against the SLO threshold",
            categories=tiers,
            series=stage_series,
            y_title="ms",
            thresholds=slo_lines[:3],
        ),
        caption="Mean time per stage stacks to the mean request time; compare with the p95 column in the "
        "table below (p95s do not add up).",
        empty_hint="Only gateways that report per-stage durations appear here.",
    )
    stage_table = [
        {
            "tier": t,
            "stage": s,
            "mean_ms": stage_sum[(t, s)] / stage_count[(t, s)] * 1000 if stage_count.get((t, s)) else None,
            "p95_ms": _ms(histogram_quantile(0.95, stage_buckets.get((t, s), {}))),
        }
        for t in tiers
        for s in stages
        if stage_count.get((t, s))
    ]
    return charts, stage_table


@login_required
@role_required(VIEWER)
def service_detail(request: HttpRequest, name: str) -> HttpResponse:
    """One service: its SLOs and the telemetry and cost charts over 6 hours, a day or a week."""
    service = catalog.service_by_name(name=name)
    if service is None:
        raise Http404("no such service")
    now = timezone.now()
    range_key = request.GET.get("range", "24h")
    range_key = range_key if range_key in SERVICE_RANGES else "24h"
    span, step_min = SERVICE_RANGES[range_key]
    markers = chart_markers(service=service.name, start=now - span, end=now)
    charts, stage_table = service_charts(
        service=service, start=now - span, end=now, step_min=step_min, markers=markers
    )
    slos = list(catalog.active_slos(service=service))
    limit = status_stale_after_s()
    slo_rows = []
    for slo in slos:
        status = getattr(slo, "status", None)
        state = slo_state(
            evaluated_at=status.evaluated_at if status else None,
            data_quality=status.data_quality if status else None,
            alert_state=status.alert_state if status else None,
            remaining=status.error_budget_remaining if status else None,
            now=now,
            stale_after_s=limit,
        )
        fresh = state not in ("stale", "not_evaluated")
        slo_rows.append(
            {
                "slo": slo,
                "state_label": STATE_LABELS[state],
                "state_css": STATE_CSS[state],
                "sli": percent(status.sli) if status and fresh else "—",
                "remaining": percent(status.error_budget_remaining, 1) if status and fresh else "—",
            }
        )
    alerts = list(budget.firing_alerts(service=service).select_related("slo").order_by("key"))
    decisions = list(decision_record_queryset(service=service.name, since=now - span)[:20])
    return render(
        request,
        "slo/service_detail.html",
        {
            "nav": "overview",
            "service": service,
            "charts": charts,
            "slo_rows": slo_rows,
            "alerts": alerts,
            "range_key": range_key,
            "ranges": list(SERVICE_RANGES),
            "stage_table": stage_table,
            "decisions": decisions,
            "capacity": capacity_context(service_name=service.name),
        },
    )
