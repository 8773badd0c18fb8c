"""Validate a pushed per-minute telemetry batch (pure: no Django, no I/O).

The format is docs/telemetry.md, "Push ingest". The whole batch is checked before anything is
stored; every problem names its path (`minutes[2].counters[5].labels.route`). Ingest is all or
nothing: a batch with any problem is rejected whole, so a gateway never has to work out which
half of a batch was kept before it resends.

Values are per-minute increases, not cumulative counters. A listed minute is complete (a series not
listed had 0 increase); a minute not listed is missing.

Speed (push ingest takes ~100,000 samples/s): a lean pass accepts the usual batch (JSON types, series
seen before) with a handful of checks per sample, and validated series are cached across batches
(their labels are checked once per process, only the known-service check is repeated per batch).
Anything the lean pass does not recognise as valid falls back to the full check, which alone writes
the problems: the two agree on every batch they both accept (a property test holds them to it).

This module is the entry point and the lean pass with its series cache; the format (limits, metric
families and labels, the validated `SeriesRef` and `PushBatch`) is `slo.telemetry.batch_format`,
the full check `slo.telemetry.batch_check`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Container
from typing import Any

from slo import contract as c
from slo.spec import Problem
from slo.telemetry.batch_check import Problems, canonical_labels, parse_checked
from slo.telemetry.batch_format import (
    BATCH_KEYS,
    CLOCK_SKEW_S,
    COUNTER_LABELS,
    GAUGE_LABELS,
    MAX_BATCH_MINUTES,
    MAX_BATCH_SAMPLES,
    MAX_EVENT_INCREASE,
    MAX_VALUE,
    MINUTE_KEYS,
    MINUTE_S,
    Point,
    PushBatch,
    SeriesRef,
    parse_minute,
    parse_sent_at,
)


def parse_push_batch(
    payload: Any,
    *,
    known_services: Container[str],
    now_s: float,
    oldest_minute: int | None = None,
    max_minutes: int = MAX_BATCH_MINUTES,
    max_samples: int = MAX_BATCH_SAMPLES,
) -> tuple[PushBatch | None, list[Problem]]:
    """Validate a batch: (batch, []) or (None, problems). `now_s` is the server's clock (epoch s).

    Checks: the shape and types; `contract_version`; minutes aligned, unique, ended (with
    CLOCK_SKEW_S of tolerance) and not older than `oldest_minute`; known metric names, exact label
    names, closed label values, known services; finite non-negative increases (integers for event
    counters) within MAX_EVENT_INCREASE / MAX_VALUE, gauges within MAX_VALUE; `sent_at`, when given,
    an ISO 8601 timestamp not ahead of `now_s` by more than CLOCK_SKEW_S; no duplicate series in a minute; cumulative histogram buckets that never decrease
    with `le` and never exceed `_count`; at most `max_minutes` minutes and `max_samples` samples.
    """
    batch = _parse_lean(payload, known_services, now_s, oldest_minute, max_minutes, max_samples)
    if batch is not None:
        return batch, []
    checked, problems = parse_checked(
        payload,
        known_services=known_services,
        now_s=now_s,
        oldest_minute=oldest_minute,
        max_minutes=max_minutes,
        max_samples=max_samples,
    )
    if checked is None:
        return None, problems
    # valid, but not in the lean pass's usual shape (e.g. int subclasses): same result, slower
    refs: dict[tuple[str, tuple[tuple[str, Any], ...]], SeriesRef] = {}
    points: list[Point] = []
    for s in checked.samples:
        ref = refs.get((s.name, tuple(s.labels.items())))
        if ref is None:
            ref = refs[(s.name, tuple(s.labels.items()))] = SeriesRef(
                s.name, s.labels, (s.series, s.service, s.tier, s.le)
            )
        points.append((s.minute, ref, s.value))
    return PushBatch(
        minutes=checked.minutes, points=points, gateway=checked.gateway, sent_at_us=checked.sent_at_us
    ), []


# -- the lean pass ------------------------------------------------------------------------------

# Validated series by (name, label names..., label values...) as sent, in order. Series do not carry
# the gateway, so gateways of one service share entries (a few hundred per service). Bounded: free
# labels (accelerator, device, model version) could otherwise grow it without end; it is cleared
# whole when full, and a cleared entry is just validated again.
MAX_CACHED_SERIES = 20_000  # 0.7 to 1.5 KB each (measured): at most ~30 MB per process
_series_cache: dict[tuple[Any, ...], SeriesRef] = {}
_cache_lock = threading.Lock()


class _EveryName:
    """The known-service check is per batch (`_parse_lean`), so cached validation skips it."""

    def __contains__(self, name: object) -> bool:
        return True


_EVERY_NAME = _EveryName()


def _series_ref(name: Any, labels: dict[str, Any], is_counter: bool) -> SeriesRef | None:
    """The validated series of these labels, from the cache or checked now; None if invalid."""
    try:
        # flat (name, keys..., values...): the length fixes the split, and it is the cheapest key
        key = (name, *labels, *labels.values())
        ref = _series_cache.get(key)
    except TypeError:  # unhashable name or label value: the full check reports it
        return None
    if ref is not None:
        return ref if ref.is_counter is is_counter else None
    allowed = (COUNTER_LABELS if is_counter else GAUGE_LABELS).get(name) if isinstance(name, str) else None
    if allowed is None:
        return None
    canonical = canonical_labels(name, labels, allowed, _EVERY_NAME, "", Problems())
    if canonical is None:
        return None
    ref = SeriesRef(name, labels, canonical)
    with _cache_lock:
        if len(_series_cache) >= MAX_CACHED_SERIES:
            _series_cache.clear()
        _series_cache[key] = ref
    return ref


def _parse_lean(
    payload: Any,
    known: Container[str],
    now_s: float,
    oldest_minute: int | None,
    max_minutes: int,
    max_samples: int,
) -> PushBatch | None:
    """The batch if it is valid and in the usual shape; None sends it to the full check.

    Every rule of `parse_checked` is applied here too, in cheaper form; this returns None at the
    first doubt rather than describing the problem."""
    if type(payload) is not dict or not payload.keys() <= BATCH_KEYS:
        return None
    version = payload.get("contract_version")
    gateway = payload.get("gateway", "")
    minutes = payload.get("minutes")
    if (
        version != c.CONTRACT_VERSION
        or isinstance(version, bool)
        or type(gateway) is not str
        or len(gateway) > 200
        or type(minutes) is not list
        or not minutes
        or len(minutes) > max_minutes
    ):
        return None
    sent_at_us = None
    if "sent_at" in payload:
        sent_at_us = parse_sent_at(payload["sent_at"])
        if sent_at_us is None or sent_at_us > (now_s + CLOCK_SKEW_S) * 1_000_000:
            return None
    latest_minute_start = now_s + CLOCK_SKEW_S - MINUTE_S
    batch_minutes: list[int] = []
    points: list[Point] = []
    append = points.append
    cache_get = _series_cache.get
    services_ok: set[str] = set()
    sample_count = 0
    for entry in minutes:
        if type(entry) is not dict or not entry.keys() <= MINUTE_KEYS:
            return None
        minute = parse_minute(entry.get("minute"))
        if (
            minute is None
            or minute * MINUTE_S > latest_minute_start
            or (oldest_minute is not None and minute < oldest_minute)
            or minute in batch_minutes  # at most MAX_BATCH_MINUTES: a list is fine
        ):
            return None
        batch_minutes.append(minute)
        counters = entry.get("counters")
        gauges = entry.get("gauges", [])
        if type(counters) is not list or type(gauges) is not list:
            return None
        sample_count += len(counters) + len(gauges)
        if sample_count > max_samples:
            return None
        seen: set[str] = set()
        buckets: dict[str, list[tuple[float, float]]] = {}
        counts: dict[str, float] = {}
        for item in counters:
            if type(item) is not dict or len(item) != 3:
                return None
            try:
                name, labels, value = item["name"], item["labels"], item["increase"]
            except KeyError:
                return None
            value_type = type(value)
            if value_type is float:
                if not 0.0 <= value <= MAX_VALUE:  # NaN fails too
                    return None
            elif value_type is not int or value < 0 or value > MAX_VALUE:
                return None
            if type(labels) is not dict:
                return None
            try:
                ref = cache_get((name, *labels, *labels.values()))
            except TypeError:
                return None
            if ref is None or not ref.is_counter:
                ref = _series_ref(name, labels, True)
                if ref is None:
                    return None
            if ref.is_event and (
                value > MAX_EVENT_INCREASE or (value_type is float and not value.is_integer())
            ):
                return None
            key = ref.key
            if key in seen:
                return None
            seen.add(key)
            if ref.check_service and ref.service not in services_ok:
                if ref.service not in known:
                    return None
                services_ok.add(ref.service)
            value = float(value)
            append((minute, ref, value))
            if ref.histogram is not None:
                if ref.is_bucket:
                    group = buckets.get(ref.histogram)
                    if group is None:
                        buckets[ref.histogram] = [(ref.le, value)]
                    else:
                        group.append((ref.le, value))
                else:
                    counts[ref.histogram] = value
        if gauges:
            seen.clear()
            for item in gauges:
                if type(item) is not dict or len(item) != 3:
                    return None
                try:
                    name, labels, value = item["name"], item["labels"], item["value"]
                except KeyError:
                    return None
                value_type = type(value)
                if (
                    value_type is not float and value_type is not int
                ) or not -MAX_VALUE <= value <= MAX_VALUE:
                    return None  # NaN fails too
                if type(labels) is not dict:
                    return None
                ref = _series_ref(name, labels, False)
                if ref is None or ref.key in seen:
                    return None
                seen.add(ref.key)
                if ref.check_service and ref.service not in services_ok:
                    if ref.service not in known:
                        return None
                    services_ok.add(ref.service)
                append((minute, ref, float(value)))
        for group_key, entries in buckets.items():
            if not _histogram_ok(entries, counts.get(group_key)):
                return None
    return PushBatch(minutes=batch_minutes, points=points, gateway=gateway, sent_at_us=sent_at_us)


def _histogram_ok(entries: list[tuple[float, float]], count: float | None) -> bool:
    """The rules of `_check_histograms` for one series' buckets (and its `_count`, if listed)."""
    entries.sort()
    low = -1.0
    for _, value in entries:
        if value < low:
            return False
        low = value
    if count is None:
        return True
    top_le, top_value = entries[-1]
    if math.isinf(top_le):
        return top_value == count
    return top_value <= count
