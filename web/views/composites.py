"""Dashboard page of a composite SLO: its budget and burn, and each member's contribution to the burn.

Numbers come from the composite's evaluated status and history (`slo.composites.selectors`); a member
without data is shown as such, never as a zero contribution.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from controlplane.lib.charts import (
    STATE_CSS,
    STATE_LABELS,
    Chart,
    bar_figure,
    duration,
    line_figure,
    percent,
    ratio,
    slo_state,
)
from controlplane.roles import VIEWER
from slo.budget.selectors import status_stale_after_s
from slo.composites import selectors
from slo.diff import diff_documents
from web import presenters
from web.access import role_required

HISTORY_DAYS = 7
VERSIONS_SHOWN = 30
ALERT_EVENTS_SHOWN = 50


def composite_state(composite: Any, now: Any) -> str:
    """The display state of a composite, by the same rules as an SLO's."""
    status = getattr(composite, "current_status", None) or getattr(composite, "status", None)
    return slo_state(
        evaluated_at=status.evaluated_at if status else None,
        data_quality=status.data_quality if status else None,
        alert_state=status.alert_state if status else None,
        remaining=status.error_budget_remaining if status else None,
        now=now,
        stale_after_s=status_stale_after_s(),
    )


def composite_rows(*, now: Any) -> list[dict[str, Any]]:
    """The overview's composite table: one row per active composite."""
    rows = []
    for composite in selectors.composites_with_status():
        status = composite.current_status
        state = composite_state(composite, now)
        shown = state not in ("stale", "not_evaluated")
        rows.append(
            {
                "url": reverse("dashboard:composite", args=[composite.pk]),
                "name": f"{composite.service.name}/{composite.name}",
                "display_name": composite.spec.get("display_name", ""),
                "aggregation": composite.aggregation.replace("_", " "),
                "members": len(composite.spec.get("members", [])),
                "objective": composite.objective,
                "state": state,
                "state_label": STATE_LABELS[state],
                "state_css": STATE_CSS[state],
                "sli": percent(status.sli) if status and shown else "—",
                "budget": percent(status.error_budget_remaining, 1) if status and shown else "—",
                "burn_1h": ratio((status.burn_rates or {}).get("1h")) if status and shown else "—",
            }
        )
    return rows


def _threshold_lines(tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[float, str] = {}
    for tier in tiers:
        value = tier.get("burn_rate_threshold")
        if tier.get("long_window") != "1h" or not isinstance(value, int | float) or not math.isfinite(value):
            continue
        seen[value] = (
            f"{tier.get('severity')} {value:.4g}× ({tier.get('long_window')} & {tier.get('short_window')})"
        )
    return [
        {"value": value, "label": label, "color": "#cf222e" if "page" in label else "#9a6700"}
        for value, label in sorted(seen.items(), reverse=True)
    ]


def _member_table(windows: dict[str, Any]) -> list[dict[str, Any]]:
    """Per member: weight, data, its burn (against the composite's objective) and contribution."""
    period = windows.get("period", {})
    by_window = {name: {m["slo_id"]: m for m in w.get("members", [])} for name, w in windows.items()}
    rows = []
    for member in period.get("members", []):
        slo_id = member["slo_id"]
        row = {
            "slo_id": slo_id,
            "slo": member["slo"],
            "weight": member["weight"],
            "period_sli": percent(1 - member["bad_fraction"]) if member["has_data"] else "no data",
            "period_events": member["events"],
            "cells": [],
        }
        for name in ("5m", "1h", "6h", "1d", "period"):
            cell = by_window.get(name, {}).get(slo_id)
            window_burn = (windows.get(name) or {}).get("burn_rate")
            if cell is None or not cell["has_data"]:
                row["cells"].append({"window": name, "text": "no data", "share": "", "nodata": True})
                continue
            share = (
                percent(cell["burn_contribution"] / window_burn, 1)
                if isinstance(window_burn, int | float) and window_burn > 0
                else "—"
            )
            row["cells"].append(
                {"window": name, "text": ratio(cell["burn_contribution"]), "share": share, "nodata": False}
            )
        rows.append(row)
    return rows


@login_required
@role_required(VIEWER)
def composite_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One composite SLO: status, member contributions to the burn, charts, alerts and versions."""
    now = timezone.now()
    composite = selectors.composite_with_status(composite_id=pk)
    if composite is None:
        raise Http404("no such composite SLO")
    status = getattr(composite, "status", None)
    state = composite_state(composite, now)
    show_numbers = state not in ("stale", "not_evaluated")
    windows = (status.windows or {}) if status and show_numbers else {}
    tiers = (status.tiers or []) if status and show_numbers else []
    start = now - timedelta(days=HISTORY_DAYS)
    points = list(selectors.composite_points(composite_id=pk, start=start, end=now))
    names = {m["slo_id"]: m["slo"] for m in (windows.get("period") or {}).get("members", [])}
    member_ids = [int(k) for p in points for k in p.contributions_1h] + list(names)
    order = list(dict.fromkeys(member_ids))
    xs = [p.at for p in points]
    contribution_series = [
        {
            "name": names.get(slo_id, f"SLO {slo_id}"),
            "x": xs,
            "y": [p.contributions_1h.get(str(slo_id)) for p in points],
        }
        for slo_id in order
    ]
    charts = {
        "contributions": Chart(
            "chart-contributions",
            line_figure(
                title="Each member's contribution to the 1h burn rate",
                series=contribution_series,
                y_title="× budget rate",
                thresholds=_threshold_lines(tiers),
                stacked=True,
                x_range=(start, now),
            ),
            caption="Stacked, the members' contributions add up to the composite's 1h burn rate; a gap is a "
            "member without data in that hour (not counted as good). Dashed lines are the 1h alert thresholds.",
            empty_hint="The composite has not been evaluated on a 5-minute boundary yet.",
            few_hint="A point is recorded every 5 minutes.",
        ),
        "budget": Chart(
            "chart-budget",
            line_figure(
                title="Error budget remaining",
                series=[
                    {
                        "name": "budget remaining",
                        "x": xs,
                        "y": [
                            None if p.error_budget_remaining is None else p.error_budget_remaining * 100
                            for p in points
                        ],
                    }
                ],
                y_title="% of budget left",
                thresholds=[{"value": 0.0, "label": "budget spent"}],
                x_range=(start, now),
            ),
            caption="The composite's own budget: (1 - objective) × the journey's events over its window.",
            empty_hint="No evaluation history yet.",
            few_hint="A point is recorded every 5 minutes.",
        ),
    }
    window_names = [n for n in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "period") if n in windows]
    if window_names:
        charts["by_window"] = Chart(
            "chart-by-window",
            bar_figure(
                title="Burn rate by window, split by member",
                categories=window_names,
                series=[
                    {
                        "name": names.get(slo_id, f"SLO {slo_id}"),
                        "y": [
                            next(
                                (
                                    m["burn_contribution"]
                                    for m in windows[n]["members"]
                                    if m["slo_id"] == slo_id
                                ),
                                None,
                            )
                            for n in window_names
                        ],
                    }
                    for slo_id in names
                ],
                y_title="× budget rate",
            ),
            caption="Each bar is one window's burn rate at the last evaluation; each colour a member's part.",
        )
    events = list(
        selectors.composite_alert_events(composite_id=pk).order_by("-at", "-id")[:ALERT_EVENTS_SHOWN]
    )
    for event in events:
        event.name = presenters.alert_name(slo_name=composite.name, severity=event.severity, kind=event.kind)
        event.view = presenters.alert_evidence(
            kind=event.kind, severity=event.severity, state=event.state, evidence=event.evidence
        )
    versions = selectors.composite_versions(composite_id=pk, limit=VERSIONS_SHOWN + 1)
    version_rows = []
    for index, version in enumerate(versions[:VERSIONS_SHOWN]):
        previous = versions[index + 1] if index + 1 < len(versions) else None
        version_rows.append(
            {
                "version": version,
                "previous": previous,
                "changes": diff_documents(previous.spec, version.spec) if previous is not None else [],
                "spec_json": json.dumps(version.spec, indent=2, sort_keys=True),
            }
        )
    window_rows = [
        {
            "name": name,
            "burn": ratio(windows[name].get("burn_rate")),
            "sli": percent(windows[name].get("sli")),
            "events": windows[name].get("events"),
            "data_quality": windows[name].get("data_quality"),
            "deciding": names.get(windows[name].get("deciding_member")),
        }
        for name in window_names
    ]
    context = {
        "nav": "overview",
        "composite": composite,
        "spec": composite.spec,
        "status": status,
        "state": state,
        "state_label": STATE_LABELS[state],
        "state_css": STATE_CSS[state],
        "show_numbers": show_numbers,
        "sli_text": percent(status.sli) if status else "—",
        "remaining_text": percent(status.error_budget_remaining, 1) if status else "—",
        "tte_text": duration(status.time_to_exhaustion_s) if status else "—",
        "members": _member_table(windows),
        "without_data": (status.members_without_data or []) if status and show_numbers else [],
        "windows": window_rows,
        "tiers": tiers,
        "charts": charts,
        "firing": list(selectors.composite_firing(composite_id=pk).order_by("severity")),
        "alert_events": events,
        "version_rows": version_rows,
        "links": {
            "openslo": reverse("composite-openslo", args=[pk]),
            "status": reverse("composite-status", args=[pk]),
        },
        "now": now,
    }
    return render(request, "slo/composite_detail.html", context)
