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
from routing.documents.selectors import baseline_version, version_get
from routing.models.documents import CacheConfigDocument
from routing.policy.cache import parse_cache_config
from slo.budget.cache_feed import CacheThresholds, cache_alerts_evaluate


def cache_alert_thresholds() -> dict[str, CacheThresholds]:
    """service name -> the thresholds of the cache config version that speaks for it."""
    out = {}
    for line in CacheConfigDocument.objects.select_related("service"):
        version = baseline_version(kind=CACHE_CONFIG, line=line) or version_get(
            kind=CACHE_CONFIG, line=line, version=None
        )
        config, _problems = parse_cache_config(version.document)
        if config is not None:  # stored versions are validated; a hand-edited row gets the defaults
            out[line.service.name] = CacheThresholds(
                max_relative_drop=config.alerts.hit_rate_drop_pct / 100,
                max_stale_rate=config.alerts.stale_hit_rate_max,
            )
    return out


def cache_alerts_feed(*, now: datetime) -> int:
    """Run the cache alerts of every service with its own thresholds. Returns the number of alert
    transitions; idempotent (alert states are claimed by conditional updates)."""
    return cache_alerts_evaluate(now=now, thresholds=cache_alert_thresholds())
