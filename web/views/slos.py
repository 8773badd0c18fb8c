"""Dashboard page of the slo app: SLO detail (server-rendered, read-only). The service detail
page lives in `services.py`.

Numbers come from the budget engine's status and history (`slo.budget.selectors`). Missing data
is shown as missing: a chart without a single value says "no data yet" instead of drawing zeros.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from controlplane.errors import ValidationFailed
from controlplane.lib.charts import (
    STATE_CSS,
    STATE_LABELS,
    Chart,
    duration,
    line_figure,
    percent,
    ratio,
    slo_state,
)
from controlplane.roles import VIEWER
from slo import selectors as catalog
from slo.budget import selectors as budget
from slo.budget.selectors import policy_rules_for, slo_status_document, slo_timeseries, status_stale_after_s
from slo.diff import diff_documents
from slo.models import Slo
from slo.spec import SloSpec
from web import presenters
from web.access import role_required
from web.markers import chart_markers, correction_spans

logger = logging.getLogger(__name__)

# SLO detail: what the SLI and burn-rate charts can show. Minute data is kept for about a week
# (TELEMETRY_MINUTE_RETENTION_DAYS), and a chart holds at most 11,000 points.
SLO_RANGES = {
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "3d": timedelta(days=3),
    "7d": timedelta(days=7),
    "window": None,
}
MAX_MINUTE_RANGE = timedelta(days=7)
VERSIONS_SHOWN = 30
ALERT_EVENTS_SHOWN = 50


def _window_start(slo: Slo, status: Any, now: datetime) -> datetime:
    if status is not None and status.period_start is not None:
        return status.period_start
    window = (slo.spec or {}).get("window") or {}
    days = window.get("days") if isinstance(window.get("days"), int) else 28
    return now - timedelta(days=days)


def _series(points: list[dict[str, Any]], scale: float = 1.0) -> tuple[list[Any], list[Any]]:
    xs = [p["t"] for p in points]
    ys = [None if p["value"] is None else p["value"] * scale for p in points]
    return xs, ys


def _slo_links(slo_id: int) -> dict[str, str | None]:
    """API download links; None while an endpoint does not exist (the page says so)."""
    links: dict[str, str | None] = {}
    for key, name in (
        ("openslo", "slo-openslo"),
        ("prometheus_rules", "slo-prometheus-rules"),
        ("status", "slo-status"),
    ):
        try:
            links[key] = reverse(name, args=[slo_id])
        except NoReverseMatch:
            links[key] = None
    return links


def _status_document(slo: Slo, status: Any) -> dict[str, Any] | None:
    """The budget engine's compact status expanded (windows and alert tiers), or None before the
    first evaluation."""
    if status is None or status.evaluated_at is None:
        return None
    try:
        return slo_status_document(status=status, spec=SloSpec.model_validate(slo.spec))
    except (ValueError, TypeError, KeyError, IndexError):
        # a row written by an older engine version: show the page without the details
        logger.warning("SLO %s: status row not readable by slo_status_document", slo.pk)
        return None


def _threshold_lines(tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dashed line per distinct alert threshold, labelled with its severity and windows."""
    seen: dict[float, str] = {}
    for tier in tiers:
        value = tier.get("burn_rate_threshold")
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        label = (
            f"{tier.get('severity')} {value:.4g}× ({tier.get('long_window')} & {tier.get('short_window')})"
        )
        seen[value] = f"{seen[value]}; {label}" if value in seen else label
    ordered = sorted(seen.items(), reverse=True)
    return [
        {"value": value, "label": label, "color": "#cf222e" if "page" in label else "#9a6700"}
        for value, label in ordered
    ]


def _policy_lines(slo: Slo) -> list[dict[str, Any]]:
    """Budget spent (0%) and the budget policy's thresholds for releases, as dashed lines in %."""
    rules, source = policy_rules_for(service=slo.service)
    lines = {0.0: "budget spent"}
    exhausted = rules.exhausted_remaining_ratio * 100
    lines[exhausted] = (
        f"{lines[exhausted]}; " if exhausted in lines else ""
    ) + f"releases frozen ({source} policy)"
    low = rules.low_remaining_ratio * 100
    extra = rules.low_extra_approvals
    lines[low] = (f"{lines[low]}; " if low in lines else "") + (
        f"low: {extra} extra approval{'s' if extra != 1 else ''}" if extra else "low"
    )
    return [
        {"value": value, "label": label, "color": "#cf222e" if value <= exhausted else "#9a6700"}
        for value, label in sorted(lines.items(), reverse=True)
    ]


@login_required
@role_required(VIEWER)
def slo_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One SLO: status, budget burn-down, SLI and burn-rate charts, alerts, versions and diffs."""
    now = timezone.now()
    slo = catalog.slo_with_status(slo_id=pk)
    if slo is None:
        raise Http404("no such SLO")
    status = getattr(slo, "status", None)
    resolution = request.GET.get("resolution", "hour")
    resolution = resolution if resolution in ("minute", "hour") else "hour"
    range_key = request.GET.get("range", "window" if resolution == "hour" else "6h")
    range_key = range_key if range_key in SLO_RANGES else "window"
    window_start = _window_start(slo, status, now)
    start = now - SLO_RANGES[range_key] if SLO_RANGES[range_key] is not None else window_start
    notes = []
    if resolution == "minute" and now - start > MAX_MINUTE_RANGE:
        start = now - MAX_MINUTE_RANGE
        notes.append("Per-minute data is kept for about a week: the range is limited to the last 7 days.")

    state = slo_state(
        evaluated_at=status.evaluated_at if status else None,
        data_quality=status.data_quality if status else None,
        alert_state=status.alert_state if status else None,
        remaining=status.error_budget_remaining if status else None,
        now=now,
        stale_after_s=status_stale_after_s(),
    )
    charts = {}
    try:
        burndown = slo_timeseries(
            slo=slo, metric="budget_remaining", resolution="hour", start=window_start, end=now
        )
        sli_points = slo_timeseries(slo=slo, metric="sli", resolution=resolution, start=start, end=now)
        burn_points = slo_timeseries(slo=slo, metric="burn_rate", resolution=resolution, start=start, end=now)
    except ValidationFailed as exc:  # a range the selector refuses: show why, not a 500
        burndown, sli_points, burn_points = [], [], []
        notes.append(f"Charts unavailable for this range: {exc}")
    markers = chart_markers(service=slo.service.name, start=min(window_start, start), end=now, slo_id=slo.pk)
    window_markers = [m for m in markers if m["at"] >= window_start]
    range_markers = [m for m in markers if m["at"] >= start]
    corrected = correction_spans(slo=slo, start=window_start, end=now)
    x, y = _series(burndown, 100)
    charts["burndown"] = Chart(
        "chart-burndown",
        line_figure(
            title="Error budget remaining over the SLO window",
            series=[{"name": "budget remaining", "x": x, "y": y}],
            y_title="% of budget left",
            thresholds=_policy_lines(slo),
            x_range=(window_start, now),
            markers=window_markers,
            spans=corrected,
        ),
        caption="Each point is the budget the engine computed from its buckets at that hour (its last "
        "evaluation of the hour). Below 0% the budget is overspent; dashed lines are the budget "
        "policy's thresholds for releases; shaded spans are status corrections (their minutes count "
        "as neither good nor bad).",
        empty_hint="The budget engine has not recorded history yet.",
        few_hint="The budget engine records a point every 5 minutes; this chart keeps one an hour, so "
        "the line appears within a few hours of the first evaluation.",
        markers=window_markers,
        spans=corrected,
    )
    x, y = _series(sli_points, 100)
    charts["sli"] = Chart(
        "chart-sli",
        line_figure(
            title=f"SLI per {resolution}",
            series=[{"name": "SLI", "x": x, "y": y, "mode": "lines"}],
            y_title="% good",
            thresholds=[{"value": slo.objective, "label": f"objective {slo.objective}%"}],
            x_range=(start, now),
            markers=range_markers,
        ),
        caption=f"Each point is that {resolution}'s good / valid events; gaps are minutes without telemetry.",
        empty_hint="No telemetry in this range.",
        few_hint=f"Each {resolution} with telemetry adds a point.",
        markers=range_markers,
    )
    document = _status_document(slo, status)
    thresholds = _threshold_lines(document["tiers"] if document else [])
    history = list(
        budget.status_points(slo_id=slo.pk, start=start, end=now).values_list("at", "burn_rate_1h")
    )
    x, y = _series(burn_points)
    burn_series = [{"name": f"burn rate per {resolution}", "x": x, "y": y}]
    if history:
        burn_series.append(
            {
                "name": "1h window burn rate (evaluated)",
                "x": [h[0] for h in history],
                "y": [h[1] for h in history],
            }
        )
    charts["burn"] = Chart(
        "chart-burn",
        line_figure(
            title="Burn rate with alert thresholds",
            series=burn_series,
            y_title="× budget rate",
            thresholds=thresholds,
            x_range=(start, now),
            markers=range_markers,
        ),
        caption="1.0 spends the budget exactly over the window. Dashed lines are this SLO's multi-window "
        "alert thresholds; an alert needs both its long and short window above the line.",
        empty_hint="No telemetry in this range.",
        few_hint=f"Each {resolution} with telemetry adds a point.",
        markers=range_markers,
    )

    alert_events = list(budget.alert_events().filter(slo=slo).order_by("-at", "-id")[:ALERT_EVENTS_SHOWN])
    for event in alert_events:
        event.name = presenters.alert_name(slo_name=slo.name, severity=event.severity, kind=event.kind)
        event.view = presenters.alert_evidence(
            kind=event.kind, severity=event.severity, state=event.state, evidence=event.evidence
        )
    firing = list(budget.firing_alerts(slo_id=slo.pk).order_by("severity"))
    versions = catalog.slo_versions(slo_id=slo.pk, limit=VERSIONS_SHOWN + 1)
    version_rows = []
    for index, version in enumerate(versions[:VERSIONS_SHOWN]):
        previous = versions[index + 1] if index + 1 < len(versions) else None
        changes = diff_documents(previous.spec, version.spec) if previous is not None else []
        version_rows.append(
            {
                "version": version,
                "previous": previous,
                "changes": changes,
                "spec_json": json.dumps(version.spec, indent=2, sort_keys=True),
            }
        )
    windows = []
    if document is not None and state not in ("stale", "not_evaluated"):
        # shortest window first, the SLO period last
        ordered = sorted(
            document["windows"].items(), key=lambda kv: (kv[0] == "period", kv[1].get("minutes") or 0)
        )
        for name, item in ordered:
            windows.append(
                {
                    "name": name,
                    "burn": ratio(item.get("burn_rate")),
                    "sli": percent(item.get("sli")),
                    "valid": item.get("valid"),
                    "missing": item.get("missing_minutes"),
                    "data_quality": item.get("data_quality"),
                }
            )
    context = {
        "nav": "overview",
        "slo": slo,
        "status": status,
        "state": state,
        "state_label": STATE_LABELS[state],
        "state_css": STATE_CSS[state],
        "show_numbers": state not in ("stale", "not_evaluated"),
        "sli_text": percent(status.sli) if status else "—",
        "remaining_text": percent(status.error_budget_remaining, 1) if status else "—",
        "tte_text": duration(status.time_to_exhaustion_s) if status else "—",
        "windows": windows,
        "tiers": document["tiers"] if document else [],
        "charts": charts,
        "resolution": resolution,
        "range_key": range_key,
        "ranges": list(SLO_RANGES),
        "notes": notes,
        "alert_events": alert_events,
        "firing": firing,
        "version_rows": version_rows,
        "links": _slo_links(slo.pk),
        "now": now,
    }
    return render(request, "slo/slo_detail.html", context)
