"""Gateway health history: one row per heartbeat, read back as per-window telemetry per pool.

A heartbeat's `health` object is free-form (at most 4 KB, checked by the heartbeat); the fields
below are read from it when they are finite numbers (booleans for `backhaul_healthy`), and stored
as NULL otherwise: a measurement a gateway does not make is missing, never zero.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from routing.capacity.plan import PoolKey, PoolTelemetry
from routing.models.capacity import GatewayHealthSample
from routing.models.fleet import Gateway
from routing.policy.autoscale import TelemetryWindow

FLOAT_FIELDS = (
    "queue_depth",
    "temperature_c",
    "memory_headroom_pct",
    "backhaul_rtt_ms",
    "request_age_ms",
    "accelerator_util_pct",
    "p95_ms",
)
POOL_LABEL = "pool"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and abs(value) < 1e12 else None


def health_sample_from(health: Mapping[str, Any], *, gateway_id: int, at: datetime) -> GatewayHealthSample:
    fields: dict[str, Any] = {name: _number(health.get(name)) for name in FLOAT_FIELDS}
    workers = _number(health.get("active_workers"))
    fields["active_workers"] = int(workers) if workers is not None and workers >= 0 else None
    healthy = health.get("backhaul_healthy")
    fields["backhaul_healthy"] = healthy if isinstance(healthy, bool) else None
    return GatewayHealthSample(gateway_id=gateway_id, at=at, **fields)


def health_sample_record(*, gateway_id: int, health: Mapping[str, Any], at: datetime) -> GatewayHealthSample:
    """Store one heartbeat's health (called in the heartbeat's transaction)."""
    sample = health_sample_from(health, gateway_id=gateway_id, at=at)
    sample.save(force_insert=True)
    return sample


def health_retention_enforce(*, now: datetime) -> int:
    cutoff = now - timedelta(days=settings.CAPACITY_HEALTH_RETENTION_DAYS)
    deleted, _ = GatewayHealthSample.objects.filter(at__lt=cutoff).delete()
    return deleted


def pool_label(labels: Any) -> str:
    value = labels.get(POOL_LABEL) if isinstance(labels, dict) else None
    return str(value)[:63] if value else ""


@dataclass(frozen=True)
class FleetPools:
    """Every pool with telemetry in the lookback, and which gateway belongs to which pool."""

    pools: list[PoolTelemetry]
    gateway_pool: dict[int, PoolKey]
    service_ids: dict[str, int]


class _Acc:
    """One gateway's samples in one window."""

    __slots__ = ("age", "accel", "accel_n", "healthy", "n", "p95", "queue", "room", "temp", "workers")

    def __init__(self) -> None:
        self.n = 0
        self.queue = 0.0
        self.workers: int | None = None
        self.temp: float | None = None
        self.room: float | None = None
        self.healthy: bool | None = None
        self.p95: float | None = None
        self.age: float | None = None
        self.accel = 0.0
        self.accel_n = 0


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else (a if b is None or a >= b else b)


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else (a if b is None or a <= b else b)


def _all(a: bool | None, b: bool | None) -> bool | None:
    return b if a is None else (a if b is None else a and b)


def fleet_pools(*, now: datetime, gateway_ids: Iterable[int] | None = None) -> FleetPools:
    """Per-pool windows (oldest first) from the health samples of the last CAPACITY_LOOKBACK_S.

    Per gateway and window: queue depth averaged, workers the most reported, temperature the
    highest, memory headroom the lowest, p95 and request age the highest, backhaul healthy only if
    every report said so. Per pool and window: queue and workers summed over its gateways, the
    other figures the worst gateway's. The newest window lasts from its start to `now`.
    """
    window_s = settings.CAPACITY_WINDOW_S
    now_s = now.timestamp()
    since = now - timedelta(seconds=settings.CAPACITY_LOOKBACK_S)
    gateways = Gateway.objects.values_list("pk", "service_id", "service__name", "tier", "region", "labels")
    if gateway_ids is not None:
        gateways = gateways.filter(pk__in=list(gateway_ids))
    gateway_pool: dict[int, PoolKey] = {}
    service_ids: dict[str, int] = {}
    for pk, service_id, service, tier, region, labels in gateways:
        gateway_pool[pk] = PoolKey(service, tier, region or "", pool_label(labels))
        service_ids[service] = service_id
    only = list(gateway_pool) if gateway_ids is not None else None
    if connection.vendor == "postgresql":
        accs = _accumulate_sql(since=since, until=now, window_s=window_s, gateway_ids=only)
    else:
        accs = _accumulate_python(since=since, until=now, window_s=window_s, gateway_ids=only)
    accs = {g: buckets for g, buckets in accs.items() if g in gateway_pool}
    by_pool: dict[PoolKey, dict[int, list[_Acc]]] = defaultdict(lambda: defaultdict(list))
    latest: dict[PoolKey, dict[int, TelemetryWindow]] = defaultdict(dict)
    current = int(now_s // window_s)
    for gateway_id, buckets in accs.items():
        key = gateway_pool[gateway_id]
        for bucket, acc in buckets.items():
            by_pool[key][bucket].append(acc)
        newest = max(buckets)
        acc = buckets[newest]
        latest[key][gateway_id] = _window(
            [acc], window_s if newest < current else max(1.0, now_s - newest * window_s)
        )
    pools = []
    for key, buckets in by_pool.items():
        order = sorted(buckets)
        windows = [
            _window(buckets[b], window_s if b < current else max(1.0, now_s - b * window_s)) for b in order
        ]
        pools.append(
            PoolTelemetry(
                key=key,
                windows=windows,
                window_starts=[float(b * window_s) for b in order],
                latest_by_gateway=latest[key],
            )
        )
    return FleetPools(pools=pools, gateway_pool=gateway_pool, service_ids=service_ids)


_AGGREGATE_SQL = """
SELECT gateway_id, floor(extract(epoch FROM at) / %s)::bigint, count(*), sum(coalesce(queue_depth, 0)),
       max(active_workers), max(temperature_c), min(memory_headroom_pct), bool_and(backhaul_healthy),
       max(p95_ms), max(request_age_ms), sum(accelerator_util_pct), count(accelerator_util_pct)
FROM routing_gatewayhealthsample
WHERE at >= %s AND at <= %s {only}
GROUP BY 1, 2
"""


def _accumulate_sql(
    *, since: datetime, until: datetime, window_s: int, gateway_ids: list[int] | None
) -> dict[int, dict[int, _Acc]]:
    """Per gateway and window, aggregated by PostgreSQL (one row per gateway-window)."""
    params: list[Any] = [window_s, since, until]
    only = ""
    if gateway_ids is not None:
        only, params = "AND gateway_id = ANY(%s)", [*params, gateway_ids]
    accs: dict[int, dict[int, _Acc]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(_AGGREGATE_SQL.format(only=only), params)
        for gateway_id, bucket, n, queue, workers, temp, room, healthy, p95, age, accel, accel_n in cursor:
            acc = accs[gateway_id][bucket] = _Acc()
            acc.n, acc.queue, acc.workers = n, float(queue), workers
            acc.temp, acc.room, acc.healthy, acc.p95, acc.age = temp, room, healthy, p95, age
            acc.accel, acc.accel_n = float(accel or 0.0), accel_n
    return accs


def _accumulate_python(
    *, since: datetime, until: datetime, window_s: int, gateway_ids: list[int] | None
) -> dict[int, dict[int, _Acc]]:
    """The same aggregation in Python (SQLite, the embedded default)."""
    rows = GatewayHealthSample.objects.filter(at__gte=since, at__lte=until).values_list(
        "gateway_id",
        "at",
        "queue_depth",
        "active_workers",
        "temperature_c",
        "memory_headroom_pct",
        "backhaul_healthy",
        "p95_ms",
        "request_age_ms",
        "accelerator_util_pct",
    )
    if gateway_ids is not None:
        rows = rows.filter(gateway_id__in=gateway_ids)
    accs: dict[int, dict[int, _Acc]] = defaultdict(dict)
    for gateway_id, at, queue, workers, temp, room, healthy, p95, age, accel in rows.iterator(
        chunk_size=20000
    ):
        bucket = int(at.timestamp() // window_s)
        by_bucket = accs[gateway_id]
        acc = by_bucket.get(bucket)
        if acc is None:
            acc = by_bucket[bucket] = _Acc()
        acc.n += 1
        acc.queue += queue or 0.0
        if workers is not None and (acc.workers is None or workers > acc.workers):
            acc.workers = workers
        acc.temp = _max(acc.temp, temp)
        acc.room = _min(acc.room, room)
        acc.healthy = _all(acc.healthy, healthy)
        acc.p95 = _max(acc.p95, p95)
        acc.age = _max(acc.age, age)
        if accel is not None:
            acc.accel += accel
            acc.accel_n += 1
    return accs


def _window(accs: list[_Acc], duration_s: float) -> TelemetryWindow:
    queue = 0.0
    workers = 0
    temp = room = p95 = age = None
    healthy: bool | None = None
    accel_sum, accel_n = 0.0, 0
    for acc in accs:
        queue += acc.queue / acc.n
        workers += acc.workers or 0
        temp, room = _max(temp, acc.temp), _min(room, acc.room)
        p95, age = _max(p95, acc.p95), _max(age, acc.age)
        healthy = _all(healthy, acc.healthy)
        if acc.accel_n:
            accel_sum += acc.accel / acc.accel_n
            accel_n += 1
    return TelemetryWindow(
        queue_depth=queue,
        active_workers=workers,
        duration_s=duration_s,
        p95_ms=p95,
        temperature_c=temp,
        memory_headroom_pct=room,
        backhaul_healthy=healthy,
        request_age_ms=age,
        accelerator_util_pct=accel_sum / accel_n if accel_n else None,
    )
