"""Feed the cache alerts with each service's own thresholds, from its cache config.

slo owns the alerts (`slo.budget.cache_feed.cache_alerts_evaluate`) and never imports routing;
the thresholds live in the cache config documents (`alerts.hit_rate_drop_pct`,
`alerts.stale_hit_rate_max`), so routing reads them and hands slo plain numbers.

Which version speaks for a service: the one running on the most gateways; else the newest
approved; else the newest. A service without a cache config gets slo's defaults.
"""

from __future__ import annotations

from datetime import datetime

from routing.documents.kinds import CACHE_CONFIG
from routing.documents.selectors import active_by_line, current_versions
from routing.models.documents import APPROVED, CacheConfigDocument, CacheConfigVersion
from slo.budget.cache_feed import CacheThresholds, cache_alerts_evaluate


def _thresholds_of(document: dict) -> CacheThresholds | None:
    alerts = document.get("alerts") if isinstance(document, dict) else None
    if not isinstance(alerts, dict):
        alerts = {}
    defaults = CacheThresholds()
    try:
        drop_pct = float(alerts.get("hit_rate_drop_pct", 20))
        stale_max = float(alerts.get("stale_hit_rate_max", 0.02))
    except (TypeError, ValueError):
        return None  # stored documents are validated; a hand-edited row is not worth a crash
    return CacheThresholds(
        max_relative_drop=drop_pct / 100 if 0 < drop_pct <= 100 else defaults.max_relative_drop,
        max_stale_rate=stale_max if 0 <= stale_max <= 1 else defaults.max_stale_rate,
    )


def cache_alert_thresholds() -> dict[str, CacheThresholds]:
    """service name -> the thresholds of the cache config version that speaks for it. A handful
    of queries whatever the number of services."""
    lines = list(CacheConfigDocument.objects.select_related("service"))
    if not lines:
        return {}
    chosen: dict[int, int] = {}  # line id -> version number
    running: dict[int, tuple[int, int]] = {}
    for (line_id, number), gateways in active_by_line(kind=CACHE_CONFIG, lines=lines).items():
        if (gateways, number) > running.get(line_id, (0, 0)):
            running[line_id] = (gateways, number)
    chosen.update({line_id: number for line_id, (_gateways, number) in running.items()})
    approved = (
        CacheConfigVersion.objects.filter(line__in=[line for line in lines if line.pk not in chosen], state=APPROVED)
        .order_by("line_id", "-version")
        .values_list("line_id", "version")
    )
    for line_id, number in approved:
        chosen.setdefault(line_id, number)
    documents = {
        (row.line_id, row.version): row.document
        for row in CacheConfigVersion.objects.filter(line__in=lines, version__in=set(chosen.values()))
        if chosen.get(row.line_id) == row.version
    }
    newest = current_versions(kind=CACHE_CONFIG, line_ids=[line.pk for line in lines if line.pk not in chosen])
    out = {}
    for line in lines:
        if line.pk in chosen:
            document = documents.get((line.pk, chosen[line.pk]))
        else:
            document = getattr(newest.get(line.pk), "document", None)
        thresholds = _thresholds_of(document) if document is not None else None
        if thresholds is not None:
            out[line.service.name] = thresholds
    return out


def cache_alerts_feed(*, now: datetime) -> int:
    """Run the cache alerts of every service with its own thresholds. Returns the number of alert
    transitions; idempotent (alert states are claimed by conditional updates)."""
    return cache_alerts_evaluate(now=now, thresholds=cache_alert_thresholds())
