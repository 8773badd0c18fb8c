"""Active capacity recommendations as Prometheus gauges on /metrics (for prometheus-adapter / HPA).

Read from the database at scrape time (the evaluation runs in a Celery worker, the scrape in the
web process), so every web process reports the same rows:

* `controlplane_capacity_recommendation{service,tier,region,pool,action}`: the amount (workers to
  add, remove or move; devices to wake) of each active recommendation;
* `controlplane_capacity_desired_workers{service,tier,region,pool}`: the target of an active
  scale-out or scale-in recommendation;
* `controlplane_capacity_current_workers{service,tier,region,pool}`: the workers it was made for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from routing.models.capacity import SCALE_IN, SCALE_OUT

logger = logging.getLogger(__name__)
POOL = ["service", "tier", "region", "pool"]


class CapacityCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        from routing.capacity.selectors import active_for_metrics

        amount = GaugeMetricFamily(
            "controlplane_capacity_recommendation",
            "Active capacity recommendation: workers to add, remove or move (devices to wake)",
            labels=[*POOL, "action"],
        )
        desired = GaugeMetricFamily(
            "controlplane_capacity_desired_workers",
            "Workers an autoscaler should run, from the active scale-out or scale-in recommendation",
            labels=POOL,
        )
        current = GaugeMetricFamily(
            "controlplane_capacity_current_workers",
            "Workers the pool reported when the active recommendation was last confirmed",
            labels=POOL,
        )
        try:
            rows = list(active_for_metrics())
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is away
            logger.warning("capacity gauges unavailable", exc_info=True)
            rows = []
        targets: dict[tuple[str, ...], tuple[str, int, int]] = {}
        for service, tier, region, pool, action, n, workers, target in rows:
            labels = (service, tier, region, pool)
            amount.add_metric([*labels, action], n)
            # one series per pool: a scale-out wins over a scale-in still clearing
            if action == SCALE_OUT or (action == SCALE_IN and labels not in targets):
                targets[labels] = (action, workers, target)
        for labels, (_action, workers, target) in sorted(targets.items()):
            desired.add_metric(list(labels), target)
            current.add_metric(list(labels), workers)
        yield amount
        yield desired
        yield current

    def describe(self) -> list:
        return []  # no describe-time DB read; collected on each scrape


_registered = False


def register() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(CapacityCollector())
        _registered = True
