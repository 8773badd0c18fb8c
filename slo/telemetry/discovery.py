"""Discovery on a Prometheus source through prometheus-api-client: its metrics, a metric's label
names and values, and a histogram's bucket boundaries (the `le` values of `<name>_bucket`).

Read-only and never on the exact pull path (that is `slo.prom`, minute by minute). Used by the
discovery API, by SLO creation (a latency threshold that is no bucket boundary is warned about)
and by `slo.budget.nodata` (the boundaries found are cached per source and metric, so the
evaluation explains a no-data latency SLO without asking Prometheus).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import requests
from django.core.cache import cache
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

from controlplane.crypto import SecretUnreadable, decrypt_secret
from slo.contract import HISTOGRAM_BUCKETS_S, LATENCY_HISTOGRAMS, REQUEST_DURATION
from slo.models.telemetry import TelemetrySource
from slo.telemetry.sources import source_headers

# Boundaries change only when a deployment changes its buckets: a day is fresh enough for a reason.
BOUNDARIES_CACHE_S = 86400
# A discovery answers an interactive request: fail fast on a down source.
DISCOVERY_TIMEOUT_S = 10
MAX_VALUES = 1000
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,199}")


class DiscoveryFailed(Exception):
    """The source did not answer (down, refused, bad credentials)."""


@dataclass(frozen=True)
class Nearest:
    below: float | None
    above: float | None


def _connect(source: TelemetrySource) -> PrometheusConnect:
    try:
        secret = decrypt_secret(source.secret_encrypted) if source.secret_encrypted else ""
    except SecretUnreadable:
        raise DiscoveryFailed("stored credentials cannot be decrypted") from None
    try:
        headers = source_headers(source)
    except SecretUnreadable:
        raise DiscoveryFailed("stored headers cannot be decrypted") from None
    if source.auth_kind == TelemetrySource.AUTH_BEARER:
        headers["Authorization"] = f"Bearer {secret}"
    auth = (source.username, secret) if source.auth_kind == TelemetrySource.AUTH_BASIC else None
    return PrometheusConnect(
        url=source.url.rstrip("/"),
        headers=headers or None,
        auth=auth,
        disable_ssl=not source.verify_tls,
        timeout=min(source.timeout_s, DISCOVERY_TIMEOUT_S),
    )


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (PrometheusApiClientException, requests.RequestException, ValueError, KeyError) as exc:
        raise DiscoveryFailed(str(exc)[:500]) from None


def _le(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def _boundaries_key(source_id: int, metric: str) -> str:
    return f"telemetry:buckets:{source_id}:{metric}"


def histogram_boundaries(source: TelemetrySource, metric: str) -> list[float]:
    """The finite `le` values of `<metric>_bucket` on the source, ascending, spellings merged
    (`0.15` and `0.150` are one boundary). Cached for `slo.budget.nodata`."""
    values = _call(_connect(source).get_label_values, "le", params={"match[]": f"{metric}_bucket"})
    found = sorted({b for b in (_le(str(v)) for v in values) if b is not None})
    cache.set(_boundaries_key(source.pk, metric), found, BOUNDARIES_CACHE_S)
    return found


def metrics_found(source: TelemetrySource, names: list[str]) -> set[str]:
    """Which of these metric names have series on the source (one request)."""
    if not names:
        return set()
    pattern = "|".join(re.escape(name) for name in names)
    found = _call(
        _connect(source).get_label_values, "__name__", params={"match[]": f'{{__name__=~"{pattern}"}}'}
    )
    return set(found) & set(names)


def cached_boundaries(keys: list[tuple[int, str]]) -> dict[tuple[int, str], list[float]]:
    """Boundaries last discovered per (source id, metric); absent keys were never discovered."""
    names = {_boundaries_key(source_id, metric): (source_id, metric) for source_id, metric in keys}
    found = cache.get_many(list(names))
    return {names[name]: value for name, value in found.items()}


def source_discovery(source: TelemetrySource, metric: str | None) -> dict[str, Any]:
    """Without a metric: the source's metric names. With one: its label names and values, and for
    a histogram (`<metric>_bucket` exists) its bucket boundaries."""
    client = _connect(source)
    if not metric:
        names = _call(client.all_metrics)
        return {"metrics": sorted(names)[:MAX_VALUES], "truncated": len(names) > MAX_VALUES}
    series_name = metric
    names = set(
        _call(
            client.get_label_values,
            "__name__",
            params={"match[]": f'{{__name__=~"{metric}|{metric}_bucket"}}'},
        )
    )
    boundaries = None
    if f"{metric}_bucket" in names:
        boundaries = histogram_boundaries(source, metric)
        series_name = f"{metric}_bucket" if metric not in names else metric
    labels: dict[str, list[str]] = {}
    for name in _call(client.get_label_names, params={"match[]": series_name}):
        if name == "__name__":
            continue
        values = _call(client.get_label_values, name, params={"match[]": series_name})
        labels[name] = sorted(values)[:MAX_VALUES]
    return {
        "metric": metric,
        "found": bool(names),
        "labels": labels,
        "bucket_boundaries": boundaries,
        "histogram": boundaries is not None,
    }


def nearest_boundaries(threshold_s: float, boundaries: list[float]) -> Nearest:
    below = max((b for b in boundaries if b < threshold_s), default=None)
    above = min((b for b in boundaries if b > threshold_s), default=None)
    return Nearest(below, above)


def is_boundary(threshold_s: float, boundaries: list[float]) -> bool:
    return any(math.isclose(threshold_s, b, rel_tol=1e-9, abs_tol=1e-12) for b in boundaries)


def _ms(seconds: float | None) -> str:
    return "none" if seconds is None else f"{seconds * 1000:g} ms"


def boundary_message(
    threshold_ms: float, boundaries: list[float], where: str, histogram: str = REQUEST_DURATION
) -> str:
    near = nearest_boundaries(threshold_ms / 1000, boundaries)
    return (
        f"{threshold_ms:g} ms is not a bucket boundary of {histogram} on {where}: the SLI would "
        f"match no series (no data); nearest boundaries {_ms(near.below)} and {_ms(near.above)}"
    )


def contract_boundaries(histogram: str = REQUEST_DURATION) -> list[float]:
    """The gateway contract's buckets of a latency histogram (the push path's boundaries)."""
    return sorted(float(b) for b in HISTOGRAM_BUCKETS_S[histogram])


def latency_threshold_warnings(
    *, threshold_ms: float, sources: list[TelemetrySource], pushed: bool, histogram: str = REQUEST_DURATION
) -> list[dict[str, str]]:
    """Warnings for a latency threshold: against each enabled source's observed boundaries (a
    source that cannot be asked is reported as such), and against the contract when gateways push."""
    warnings = []
    threshold_s = threshold_ms / 1000
    for source in sources:
        try:
            found = histogram_boundaries(source, histogram)
        except DiscoveryFailed as exc:
            warnings.append(
                {
                    "path": "sli.threshold_ms",
                    "message": f"bucket boundaries of source {source.name} could not be read: {exc}",
                }
            )
            continue
        if found and not is_boundary(threshold_s, found):
            warnings.append(
                {
                    "path": "sli.threshold_ms",
                    "message": boundary_message(threshold_ms, found, f"source {source.name}", histogram),
                }
            )
    if pushed and not is_boundary(threshold_s, contract_boundaries(histogram)):
        warnings.append(
            {
                "path": "sli.threshold_ms",
                "message": boundary_message(
                    threshold_ms, contract_boundaries(histogram), "the gateway contract", histogram
                ),
            }
        )
    return warnings


def covering_sources(*, service_name: str, service_tiers: list[str], tier: str) -> list[TelemetrySource]:
    """Enabled sources that serve an SLO of this service and tier (the rule of `pull.served_slos`)."""
    out = []
    for source in TelemetrySource.objects.filter(enabled=True).order_by("name"):
        if source.services and service_name not in source.services:
            continue
        if source.tier == tier or (not tier and source.tier in (service_tiers or [])):
            out.append(source)
    return out


def slo_threshold_warnings(slo: Any) -> list[dict[str, str]]:
    """Creation warnings of a stored SLO: nothing serves it, or a latency threshold that is no bucket boundary on the
    sources serving it (read from them now) or in the contract its gateways push."""
    from django.apps import apps

    sli = (slo.spec or {}).get("sli") or {}
    service = slo.service
    sources = covering_sources(
        service_name=service.name, service_tiers=service.tiers or [], tier=slo.tier or ""
    )
    gateways = apps.get_model("routing", "Gateway").objects.filter(service=service)
    if slo.tier:
        gateways = gateways.filter(tier=slo.tier)
    pushed = gateways.exists()
    if not sources and not pushed:
        return [
            {
                "path": "tier",
                "message": (
                    f"no telemetry source serves service {service.name} on tier {slo.tier or 'any'} and no gateway "
                    "pushes for it: the SLO has no data until one does"
                ),
            }
        ]
    histogram = LATENCY_HISTOGRAMS.get(sli.get("kind"))
    if histogram is None or not sli.get("threshold_ms"):
        return []
    return latency_threshold_warnings(
        threshold_ms=float(sli["threshold_ms"]), sources=sources, pushed=pushed, histogram=histogram
    )
