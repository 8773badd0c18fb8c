"""The push batch format (pure: no Django, no I/O): what a batch may carry, and what a validated one is.

The format is docs/telemetry.md, "Push ingest": the limits of a batch and of a value, the metric
families with their exact label names and closed value sets, the spellings of minutes, `sent_at`
and bucket boundaries, and the validated forms (`SeriesRef`, `PushBatch`) that storage reads.
Validation itself is `slo.telemetry.batch` (the lean pass) and `slo.telemetry.batch_check` (the
full check that writes the problems).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from slo import contract as c

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


# Labels a series may leave out (every other label of its family is required): the request class,
# on every counter and histogram that carries `service`.
OPTIONAL_LABELS = frozenset({c.CLASS_LABEL})


_VALID_DURATION_OUTCOMES = tuple(o for o in c.OUTCOMES if o != "shed")

# Counter families (histograms as their `_bucket`, `_count`, `_sum` sample names): the exact label
# names each one carries and the closed value sets. `le` is added for `_bucket` samples.
COUNTER_LABELS: dict[str, dict[str, tuple[str, ...] | None]] = {
    c.REQUESTS_TOTAL: _labels(route=c.ROUTES, outcome=c.OUTCOMES),
    c.FALLBACKS_TOTAL: _labels(from_route=c.ROUTES, to_route=c.ROUTES, outcome=c.FALLBACK_OUTCOMES),
    c.CACHE_LOOKUPS_TOTAL: _labels(layer=c.CACHE_LAYERS, result=c.CACHE_RESULTS),
    c.COMPUTE_SECONDS_TOTAL: _labels(accelerator=_ANY),
    c.EGRESS_BYTES_TOTAL: _labels(route=c.ROUTES),
    c.TOKENS_TOTAL: _labels(route=c.ROUTES, provider=_ANY, model=_ANY, direction=c.TOKEN_DIRECTIONS),
}
HISTOGRAM_LABELS: dict[str, dict[str, tuple[str, ...] | None]] = {
    c.REQUEST_DURATION: _labels(route=c.ROUTES, outcome=_VALID_DURATION_OUTCOMES),
    c.ANSWER_DATA_AGE: _labels(route=c.ROUTES),
    c.STAGE_DURATION: _labels(stage=c.STAGES),
    c.TIME_TO_FIRST_TOKEN: _labels(route=c.ROUTES, outcome=("ok", "timeout")),
    c.TIME_PER_OUTPUT_TOKEN: _labels(route=c.ROUTES),
}
for _names in (*COUNTER_LABELS.values(), *HISTOGRAM_LABELS.values()):
    _names[c.CLASS_LABEL] = c.CLASSES
for _base, _names in HISTOGRAM_LABELS.items():
    COUNTER_LABELS[f"{_base}_bucket"] = {**_names, "le": _ANY}
    COUNTER_LABELS[f"{_base}_count"] = _names
    COUNTER_LABELS[f"{_base}_sum"] = _names
# Counters of events (integers); the others (seconds, bytes, `_sum`) may be fractional.
EVENT_COUNTERS = frozenset(
    {c.REQUESTS_TOTAL, c.FALLBACKS_TOTAL, c.CACHE_LOOKUPS_TOTAL, c.TOKENS_TOTAL}
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
    c.CONFIG_REVISION_INFO: {
        "gateway": _ANY,
        "document_kind": c.DOCUMENT_KINDS,
        "document": _ANY,
        "revision": _ANY,
    },
}


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
        "name",
        "service",
        "tier",
        "series",
        "le",
        "labels",
        "stored_labels",
        "key",
        "is_counter",
        "is_event",
        "check_service",
        "histogram",
        "is_bucket",
        "sql_fields",
    )

    def __init__(
        self, name: str, labels: dict[str, str], canonical: tuple[str, str, str, float | None]
    ) -> None:
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
        self.histogram = (
            f"{base}\0{service}\0{tier}\0{series}" if base is not None and base in HISTOGRAM_LABELS else None
        )
        self.sql_fields: tuple[str, str, str, str] | None = None  # the storage layer's cached rendering

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
        """The distinct series of the batch, in order of first appearance (computed once: points do
        not change after validation)."""
        if self._series_refs is None:
            self._series_refs = list(dict.fromkeys([point[1] for point in self.points]))
        return self._series_refs

    def service_tiers(self) -> set[tuple[str, str]]:
        """(service, tier) of the series that name a service (computed once: points do not change
        after validation)."""
        if self._service_tiers is None:
            self._service_tiers = {(ref.service, ref.tier) for ref in self.series_refs() if ref.service}
        return self._service_tiers

    _service_tiers: set[tuple[str, str]] | None = field(default=None, repr=False, compare=False)
    _series_refs: list[SeriesRef] | None = field(default=None, repr=False, compare=False)


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


# The fields of a batch and of a minute entry.
BATCH_KEYS = frozenset({"contract_version", "gateway", "sent_at", "minutes"})
MINUTE_KEYS = frozenset({"minute", "counters", "gauges"})
