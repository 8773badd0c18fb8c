"""Events marked on the dashboard's time charts: release starts, completions and rollbacks (from
routing's selector) and alert transitions (from slo's alert history); status corrections as
shaded spans (from slo's corrections).

Page layer: this is where the two apps' reads meet, so neither app imports the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controlplane.lib.charts import event_markers
from routing.releases.selectors import release_markers
from slo.budget.selectors import alert_events
from slo.corrections.selectors import corrections_applied

MAX_ALERT_MARKERS = 100


def chart_markers(
    *, service: str, start: datetime, end: datetime, slo_id: int | None = None
) -> list[dict[str, Any]]:
    """Markers for a time chart of one service (and one SLO's alerts when `slo_id` is given; else
    every alert of the service) in `[start, end)`."""
    alerts = alert_events(service=service).filter(at__gte=start, at__lt=end)
    if slo_id is not None:
        alerts = alerts.filter(slo_id=slo_id)
    alert_rows = list(alerts.order_by("-at", "-id").values("at", "state", "severity")[:MAX_ALERT_MARKERS])
    return event_markers(
        releases=release_markers(service=service, start=start, end=end),
        alerts=reversed(alert_rows),
    )


def correction_spans(*, slo: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The spans status corrections excluded from this SLO's budget in `[start, end)`, labelled
    with the reason, who wrote the correction, who approved it and when it took effect."""
    spans = []
    for c in corrections_applied(slos=[(slo.pk, slo.spec)], start=start, end=end):
        approved = f", approved by {c['approved_by']}" if c["approved_by"] else ""
        applied = c["applied_at"][:16].replace("T", " ") + " UTC" if c["applied_at"] else "—"
        label = f"correction #{c['id']} v{c['version']}: {c['reason']} (by {c['author']}{approved}; in force since {applied})"
        for span in c["spans"]:
            spans.append(
                {
                    "start": datetime.fromisoformat(span["start"]),
                    "end": datetime.fromisoformat(span["end"]),
                    "short": f"correction #{c['id']}",
                    "label": label,
                }
            )
    return sorted(spans, key=lambda s: s["start"])
