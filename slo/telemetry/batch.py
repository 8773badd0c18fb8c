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
"""

from __future__ import annotations

import math
import threading
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from slo import contract as c
from slo.spec import Problem

MINUTE_S = 60
# A minute may be pushed once it has ended; gateway clocks may run this far ahead of ours.
CLOCK_SKEW_S = 120
# Limits of one batch. A gateway catching up after an outage sends several batches, oldest first.
MAX_BATCH_MINUTES = 180
MAX_BATCH_SAMPLES = 100_000
MAX_BATCH_BYTES = 8 * 1024 * 1024
MAX_PROBLEMS = 50
MAX_FREE_LABEL_LEN = 128
# Bounds of one value. Events per series and minute: a billion (~16.7 million a second) is far
# beyond any gateway, and keeps every per-minute sum of a batch (at most MAX_BATCH_SAMPLES values)
# exact in float64 (< 2**53) and inside the bigint columns it is stored in.
MAX_EVENT_INCREASE = 10**9
# Seconds, bytes, histogram sums and gauges (absolute value): a petabyte of egress in one minute
# still fits, and every sum the cost model forms stays finite.
MAX_VALUE = 1e15

_ANY = None  # a free label: any value within the length and character rules


def _labels(**closed: tuple[str, ...] | None) -> dict[str, tuple[str, ...] | None]:
    return {"service": _ANY, "tier": c.TIERS, **closed}


_VALID_DURATION_OUTCOMES = tuple(o for o in c.OUTCOMES if o != "shed")

# Counter families (histograms as their `_bucket`, `_count`, `_sum` sample names): the exact label
# names each one carries and the closed value sets. `le` is added for `_bucket` samples.
COUNTER_LABELS: dict[str, dict[str, tuple[str, ...] | None]] = {
    c.REQUESTS_TOTAL: _labels(route=c.ROUTES, outcome=c.OUTCOMES),
    c.FALLBACKS_TOTAL: _labels(from_route=c.ROUTES, to_route=c.ROUTES, outcome=c.FALLBACK_OUTCOMES),
    c.CACHE_LOOKUPS_TOTAL: _labels(layer=c.CACHE_LAYERS, result=c.CACHE_RESULTS),
    c.COMPUTE_SECONDS_TOTAL: _labels(accelerator=_ANY),
    c.EGRESS_BYTES_TOTAL: _labels(route=c.ROUTES),
}
HISTOGRAM_LABELS: dict[str, dict[str, tuple[str, ...] | None]] = {
    c.REQUEST_DURATION: _labels(route=c.ROUTES, outcome=_VALID_DURATION_OUTCOMES),
    c.ANSWER_DATA_AGE: _labels(route=c.ROUTES),
    c.STAGE_DURATION: _labels(stage=c.STAGES),
}
for _base, _names in HISTOGRAM_LABELS.items():
    COUNTER_LABELS[f"{_base}_bucket"] = {**_names, "le": _ANY}
    COUNTER_LABELS[f"{_base}_count"] = _names
    COUNTER_LABELS[f"{_base}_sum"] = _names
# Counters of events (integers); the others (seconds, bytes, `_sum`) may be fractional.
EVENT_COUNTERS = frozenset(
    {c.REQUESTS_TOTAL, c.FALLBACKS_TOTAL, c.CACHE_LOOKUPS_TOTAL}
    | {f"{b}_{s}" for b in HISTOGRAM_LABELS for s in ("bucket", "count")}
)
GAUGE_LABELS: dict[str, dict[str, tuple[str, ...] | None]] = {
    c.QUEUE_DEPTH: _labels(),
    c.ACTIVE_WORKERS: _labels(),
    c.MODEL_CONFIDENCE: _labels(model_version=_ANY),
    c.DEVICE_TEMPERATURE: {"tier": c.TIERS, "device": _ANY},
    c.MEMORY_HEADROOM: {"tier": c.TIERS, "device": _ANY},
    c.BACKHAUL_RTT: {"tier": c.TIERS, "target": _ANY},
    c.CONFIG_REVISION: {"gateway": _ANY, "document_kind": c.DOCUMENT_KINDS},
    c.CONFIG_REVISION_INFO: {"gateway": _ANY, "document_kind": c.DOCUMENT_KINDS, "document": _ANY, "revision": _ANY},
}
_SPLIT_OUT = frozenset({"service", "tier", "le"})


class Sample(NamedTuple):
    """One series' value in one minute, in canonical form.

    `series` is the canonical `k=v,...` of the labels other than service, tier and le; `le` is the
    bucket boundary as a float (`inf` for +Inf) or None; `labels` is the label dict as sent.
    """

    minute: int
    name: str
    service: str
    tier: str
    series: str
    le: float | None
    value: float
    labels: dict[str, str]

    @property
    def stored_labels(self) -> str:
        """The `labels` column: the series labels plus the normalised `le`."""
        return _stored_labels(self.series, self.le)


class SeriesRef:
    """A validated series of a batch: everything about a sample but its minute and value.

    `key` identifies the series for duplicate checks (le spellings count as one); `histogram`
    identifies the (base, service, tier, series) group of a `_bucket`/`_count` sample, else None."""

    __slots__ = (
        "name", "service", "tier", "series", "le", "labels", "stored_labels", "key", "is_counter", "is_event",
        "check_service", "histogram", "is_bucket", "copy_tail",
    )

    def __init__(self, name: str, labels: dict[str, str], canonical: tuple[str, str, str, float | None]) -> None:
        series, service, tier, le = canonical
        self.name, self.service, self.tier, self.series, self.le = name, service, tier, series, le
        self.labels = dict(labels)  # a copy: the cache must not alias the caller's payload
        self.stored_labels = _stored_labels(series, le)
        # strings cache their hash: the per-sample duplicate check costs one set look-up
        self.key = f"{name}\0{service}\0{tier}\0{series}\0{le!r}"
        self.is_counter = name in COUNTER_LABELS
        self.is_event = name in EVENT_COUNTERS
        self.check_service = "service" in (COUNTER_LABELS.get(name) or GAUGE_LABELS.get(name) or {})
        self.is_bucket = name[-7:] == "_bucket"
        base = name[:-7] if self.is_bucket else name[:-6] if name[-6:] == "_count" else None
        self.histogram = f"{base}\0{service}\0{tier}\0{series}" if base is not None and base in HISTOGRAM_LABELS else None
        self.copy_tail: str | None = None  # the storage layer's cached rendering of the series

    def sample(self, minute: int, value: float) -> Sample:
        return Sample(minute, self.name, self.service, self.tier, self.series, self.le, value, self.labels)


# A point: (epoch minute, series, value as float).
Point = tuple[int, SeriesRef, float]


@dataclass
class PushBatch:
    """A validated batch: its minutes (epoch minutes, as listed) and every sample as a point."""

    minutes: list[int] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    gateway: str = ""
    # `sent_at` in microseconds since the epoch, or None when the batch has none
    sent_at_us: int | None = None

    @property
    def samples(self) -> list[Sample]:
        """Every sample in canonical form (built on demand; the ingest path reads `points`)."""
        return [ref.sample(minute, value) for minute, ref, value in self.points]

    def series_refs(self) -> list[SeriesRef]:
        """The distinct series of the batch, in order of first appearance."""
        return list(dict.fromkeys(ref for _, ref, _ in self.points))

    def service_tiers(self) -> set[tuple[str, str]]:
        """(service, tier) of the series that name a service (computed once: points do not change
        after validation)."""
        if self._service_tiers is None:
            self._service_tiers = {(ref.service, ref.tier) for ref in self.series_refs() if ref.service}
        return self._service_tiers

    _service_tiers: set[tuple[str, str]] | None = field(default=None, repr=False, compare=False)


def _stored_labels(series: str, le: float | None) -> str:
    if le is None:
        return series
    parts = [*series.split(","), f"le={le_label(le)}"] if series else [f"le={le_label(le)}"]
    return ",".join(sorted(parts))


def le_label(le: float) -> str:
    """Normalised spelling of a bucket boundary: the shortest float repr, `+Inf` for infinity."""
    return "+Inf" if math.isinf(le) else repr(le)


def parse_le(text: str) -> float | None:
    """A bucket boundary from any usual spelling ("0.15", ".150", "1.5e-01", "+Inf"), or None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    if math.isnan(value) or value < 0:
        return None
    return value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_sent_at(text: Any) -> int | None:
    """Microseconds since the epoch of an ISO 8601 timestamp with a UTC offset, or None."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            return None
        return (moment - _EPOCH) // timedelta(microseconds=1)
    except (ValueError, OverflowError):
        return None


def parse_minute(text: Any) -> int | None:
    """Epoch minute of an ISO 8601 UTC-offset timestamp aligned to a minute, or None."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or moment.second or moment.microsecond:
        return None
    return int(moment.timestamp()) // MINUTE_S


class _Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(Problem(path, message))

    @property
    def full(self) -> bool:
        return len(self.items) >= MAX_PROBLEMS


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
    checked, problems = _parse_checked(
        payload, known_services=known_services, now_s=now_s, oldest_minute=oldest_minute,
        max_minutes=max_minutes, max_samples=max_samples,
    )
    if checked is None:
        return None, problems
    # valid, but not in the lean pass's usual shape (e.g. int subclasses): same result, slower
    refs: dict[tuple[str, tuple[tuple[str, Any], ...]], SeriesRef] = {}
    points: list[Point] = []
    for s in checked.samples:
        ref = refs.get((s.name, tuple(s.labels.items())))
        if ref is None:
            ref = refs[(s.name, tuple(s.labels.items()))] = SeriesRef(s.name, s.labels, (s.series, s.service, s.tier, s.le))
        points.append((s.minute, ref, s.value))
    return PushBatch(minutes=checked.minutes, points=points, gateway=checked.gateway, sent_at_us=checked.sent_at_us), []


@dataclass
class _Checked:
    minutes: list[int] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    gateway: str = ""
    sent_at_us: int | None = None


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float (JSON allows it)
        return False


# -- the lean pass ------------------------------------------------------------------------------

_BATCH_KEYS = frozenset({"contract_version", "gateway", "sent_at", "minutes"})
_MINUTE_KEYS = frozenset({"minute", "counters", "gauges"})
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
    canonical = _canonical_labels(name, labels, allowed, _EVERY_NAME, "", _Problems())
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

    Every rule of `_parse_checked` is applied here too, in cheaper form; this returns None at the
    first doubt rather than describing the problem."""
    if type(payload) is not dict or not payload.keys() <= _BATCH_KEYS:
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
        if type(entry) is not dict or not entry.keys() <= _MINUTE_KEYS:
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
            if ref.is_event and (value > MAX_EVENT_INCREASE or (value_type is float and not value.is_integer())):
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
                if (value_type is not float and value_type is not int) or not -MAX_VALUE <= value <= MAX_VALUE:
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


def _parse_checked(
    payload: Any,
    *,
    known_services: Container[str],
    now_s: float,
    oldest_minute: int | None = None,
    max_minutes: int = MAX_BATCH_MINUTES,
    max_samples: int = MAX_BATCH_SAMPLES,
) -> tuple[_Checked | None, list[Problem]]:
    """The full check: (batch, []) or (None, problems with their paths). See `parse_push_batch`."""
    problems = _Problems()
    if not isinstance(payload, dict):
        return None, [Problem("", "the batch must be a JSON object")]
    unknown = sorted(set(payload) - _BATCH_KEYS)
    for key in unknown:
        problems.add(key, "unknown field")
    version = payload.get("contract_version")
    if version != c.CONTRACT_VERSION or isinstance(version, bool):
        problems.add("contract_version", f"must be {c.CONTRACT_VERSION}")
    gateway = payload.get("gateway", "")
    if not isinstance(gateway, str) or len(gateway) > 200:
        problems.add("gateway", "must be a string of at most 200 characters")
        gateway = ""
    sent_at_us = None
    if "sent_at" in payload:
        sent_at_us = parse_sent_at(payload["sent_at"])
        if sent_at_us is None:
            problems.add("sent_at", "must be an ISO 8601 timestamp with a UTC offset")
        elif sent_at_us > (now_s + CLOCK_SKEW_S) * 1_000_000:
            problems.add("sent_at", f"is ahead of the control plane's clock by more than {CLOCK_SKEW_S} s")
    minutes = payload.get("minutes")
    if not isinstance(minutes, list) or not minutes:
        problems.add("minutes", "must be a non-empty list")
        return None, problems.items
    if len(minutes) > max_minutes:
        problems.add("minutes", f"at most {max_minutes} minutes per batch, got {len(minutes)}; send several")
        return None, problems.items

    known = known_services
    latest_minute_start = now_s + CLOCK_SKEW_S - MINUTE_S
    batch = _Checked(gateway=gateway, sent_at_us=sent_at_us)
    label_cache: dict[Any, tuple[str, str, str, float | None]] = {}
    seen_minutes: set[int] = set()
    sample_count = 0
    for i, entry in enumerate(minutes):
        where = f"minutes[{i}]"
        if not isinstance(entry, dict):
            problems.add(where, "must be an object")
            continue
        for key in sorted(set(entry) - {"minute", "counters", "gauges"}):
            problems.add(f"{where}.{key}", "unknown field")
        minute = parse_minute(entry.get("minute"))
        if minute is None:
            problems.add(f"{where}.minute", "must be an ISO 8601 timestamp with a UTC offset, aligned to a minute")
            continue
        if minute * MINUTE_S > latest_minute_start:
            problems.add(f"{where}.minute", "is in the future or not over yet (the minute must have ended)")
        elif oldest_minute is not None and minute < oldest_minute:
            problems.add(f"{where}.minute", "is older than the minute retention")
        if minute in seen_minutes:
            problems.add(f"{where}.minute", "this minute is listed twice")
        seen_minutes.add(minute)
        batch.minutes.append(minute)
        counters = entry.get("counters")
        if not isinstance(counters, list):
            problems.add(f"{where}.counters", "must be a list (empty for an idle minute)")
            counters = []
        gauges = entry.get("gauges", [])
        if not isinstance(gauges, list):
            problems.add(f"{where}.gauges", "must be a list")
            gauges = []
        sample_count += len(counters) + len(gauges)
        if sample_count > max_samples:
            problems.add("minutes", f"at most {max_samples} samples per batch; send several")
            return None, problems.items
        start = len(batch.samples)
        _parse_items(
            counters, f"{where}.counters", minute, COUNTER_LABELS, "increase", known, batch, problems, label_cache
        )
        _parse_items(gauges, f"{where}.gauges", minute, GAUGE_LABELS, "value", known, batch, problems, label_cache)
        _check_histograms(batch.samples[start:], counters, f"{where}.counters", problems)
        if problems.full:
            break
    if problems.items:
        return None, problems.items
    return batch, []


def _parse_items(
    items: list[Any],
    where: str,
    minute: int,
    families: dict[str, dict[str, tuple[str, ...] | None]],
    value_key: str,
    known: Container[str],
    batch: _Checked,
    problems: _Problems,
    label_cache: dict[Any, tuple[str, str, str, float | None]],
) -> None:
    is_counter = value_key == "increase"
    seen: set[tuple[str, str, str, str, float | None]] = set()
    append = batch.samples.append
    for j, item in enumerate(items):
        if not isinstance(item, dict):
            problems.add(f"{where}[{j}]", "must be an object")
            continue
        name = item.get("name")
        allowed = families.get(name) if isinstance(name, str) else None
        if allowed is None:
            problems.add(f"{where}[{j}].name", f"unknown metric {name!r}" if isinstance(name, str) else "must be a string")
            continue
        if len(item) != 3 or "labels" not in item or value_key not in item:
            extra = sorted(set(item) - {"name", "labels", value_key})
            problems.add(
                f"{where}[{j}]", f"needs exactly name, labels and {value_key}" + (f"; unknown {extra}" if extra else "")
            )
            continue
        value = item[value_key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            problems.add(f"{where}[{j}].{value_key}", "must be a finite number")
            continue
        if is_counter:
            if value < 0:
                problems.add(f"{where}[{j}].{value_key}", "must not be negative (send per-minute increases)")
                continue
            if name in EVENT_COUNTERS:
                if value != int(value):
                    problems.add(f"{where}[{j}].{value_key}", "counts events: must be a whole number")
                    continue
                if value > MAX_EVENT_INCREASE:
                    problems.add(f"{where}[{j}].{value_key}", f"at most {MAX_EVENT_INCREASE:,} events per series and minute")
                    continue
        if abs(value) > MAX_VALUE:
            problems.add(f"{where}[{j}].{value_key}", f"must be at most {MAX_VALUE:g} in absolute value")
            continue
        labels = item["labels"]
        if not isinstance(labels, dict):
            problems.add(f"{where}[{j}].labels", "must be an object")
            continue
        # The same series comes back every minute of a batch: validate its labels once.
        try:
            cache_key: Any = (name, tuple(labels.items()))
            canonical = label_cache.get(cache_key)
        except TypeError:  # an unhashable label value: the full check reports it
            cache_key, canonical = None, None
        if canonical is None:
            canonical = _canonical_labels(name, labels, allowed, known, f"{where}[{j}]", problems)
            if canonical is None:
                continue
            if cache_key is not None:
                label_cache[cache_key] = canonical
        series, service, tier, le = canonical
        key = (name, service, tier, series, le)
        if key in seen:
            problems.add(f"{where}[{j}]", "this series is listed twice in the minute (le spellings count as one)")
            continue
        seen.add(key)
        append(Sample(minute, name, service, tier, series, le, float(value), labels))


def _canonical_labels(
    name: str,
    labels: dict[str, Any],
    allowed: dict[str, tuple[str, ...] | None],
    known: Container[str],
    path: str,
    problems: _Problems,
) -> tuple[str, str, str, float | None] | None:
    """(series, service, tier, le) of valid labels, or None after adding the problems."""
    if labels.keys() != allowed.keys():
        missing = sorted(allowed.keys() - labels.keys())
        extra = sorted(labels.keys() - allowed.keys())
        detail = "; ".join(x for x in (f"missing {missing}" if missing else "", f"unknown {extra}" if extra else "") if x)
        problems.add(f"{path}.labels", f"labels of {name} are {sorted(allowed)}: {detail}")
        return None
    ok = True
    le: float | None = None
    for label, choices in allowed.items():
        text = labels[label]
        if not isinstance(text, str) or not text:
            problems.add(f"{path}.labels.{label}", "must be a non-empty string")
            ok = False
        elif label == "le":
            le = parse_le(text)
            if le is None:
                problems.add(f"{path}.labels.le", f"{text!r} is not a bucket boundary (a number >= 0 or +Inf)")
                ok = False
        elif choices is not None:
            if text not in choices:
                problems.add(f"{path}.labels.{label}", f"{text!r} is not one of {list(choices)}")
                ok = False
        elif label == "service":
            if text not in known:
                problems.add(f"{path}.labels.service", f"unknown service {text!r}")
                ok = False
        elif len(text) > MAX_FREE_LABEL_LEN or "," in text or "=" in text or not text.isprintable():
            problems.add(f"{path}.labels.{label}", f"at most {MAX_FREE_LABEL_LEN} printable characters, no ',' or '='")
            ok = False
    if not ok:
        return None
    series = ",".join(f"{k}={labels[k]}" for k in sorted(labels) if k not in _SPLIT_OUT)
    return series, labels.get("service", ""), labels.get("tier", ""), le


def _check_histograms(samples: list[Sample], items: list[Any], where: str, problems: _Problems) -> None:
    """Cumulative buckets never decrease as `le` grows and never exceed `_count` (+Inf equals it)."""
    buckets: dict[tuple[str, str, str, str], list[tuple[float, float, int]]] = {}
    counts: dict[tuple[str, str, str, str], tuple[float, int]] = {}
    for s in samples:
        name = s.name
        if name[-7:] == "_bucket":
            le = s.le if s.le is not None else math.inf
            buckets.setdefault((name[:-7], s.service, s.tier, s.series), []).append((le, s.value, id(s.labels)))
        elif name[-6:] == "_count":
            counts[(name[:-6], s.service, s.tier, s.series)] = (s.value, id(s.labels))
    if not buckets:
        return
    position: dict[int, int] | None = None

    def at(label_id: int) -> str:
        # map a sample back to its place in the request, only when there is a problem to report
        nonlocal position
        if position is None:
            position = {id(i["labels"]): j for j, i in enumerate(items) if isinstance(i, dict) and "labels" in i}
        return f"{where}[{position.get(label_id, -1)}].increase"

    for base, entries in buckets.items():
        entries.sort()
        for (low_le, low_value, _), (le, value, label_id) in zip(entries, entries[1:], strict=False):
            if value < low_value:
                problems.add(
                    at(label_id),
                    f"cumulative histogram buckets must not decrease with le: le={le_label(le)} has {value:g}, "
                    f"le={le_label(low_le)} has {low_value:g}",
                )
                break
        if base not in counts:
            continue
        count, count_id = counts[base]
        top_le, top_value, top_id = entries[-1]
        if math.isinf(top_le) and top_value != count:
            problems.add(at(count_id), f"_count ({count:g}) must equal the +Inf bucket ({top_value:g})")
        elif top_value > count:
            problems.add(at(top_id), f"bucket le={le_label(top_le)} ({top_value:g}) exceeds _count ({count:g})")
