"""Events marked on the dashboard's time charts: release starts, completions and rollbacks (from
routing's selector) and alert transitions (from slo's alert history).

Page layer: this is where the two apps' reads meet, so neither app imports the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controlplane.lib.charts import event_markers
from routing.releases.selectors import release_markers
from slo.budget.selectors import alert_events

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
