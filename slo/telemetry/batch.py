"""Validate a pushed per-minute telemetry batch (pure: no Django, no I/O).

The format is docs/telemetry.md, "Push ingest". The whole batch is checked before anything is
stored; every problem names its path (`minutes[2].counters[5].labels.route`). Ingest is all or
nothing: a batch with any problem is rejected whole, so a gateway never has to work out which
half of a batch was kept before it resends.

Values are per-minute increases, not cumulative counters. A listed minute is complete (a series not
listed had 0 increase); a minute not listed is missing.
"""

from __future__ import annotations

import math
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import datetime
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
        if self.le is None:
            return self.series
        parts = [*self.series.split(","), f"le={le_label(self.le)}"] if self.series else [f"le={le_label(self.le)}"]
        return ",".join(sorted(parts))


@dataclass
class PushBatch:
    """A validated batch: its minutes (epoch minutes, as listed) and every sample."""

    minutes: list[int] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    gateway: str = ""

    def service_tiers(self) -> set[tuple[str, str]]:
        return {(s.service, s.tier) for s in self.samples if s.service}


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
    counters); no duplicate series in a minute; cumulative histogram buckets that never decrease
    with `le` and never exceed `_count`; at most `max_minutes` minutes and `max_samples` samples.
    """
    problems = _Problems()
    if not isinstance(payload, dict):
        return None, [Problem("", "the batch must be a JSON object")]
    unknown = sorted(set(payload) - {"contract_version", "gateway", "minutes"})
    for key in unknown:
        problems.add(key, "unknown field")
    version = payload.get("contract_version")
    if version != c.CONTRACT_VERSION or isinstance(version, bool):
        problems.add("contract_version", f"must be {c.CONTRACT_VERSION}")
    gateway = payload.get("gateway", "")
    if not isinstance(gateway, str) or len(gateway) > 200:
        problems.add("gateway", "must be a string of at most 200 characters")
        gateway = ""
    minutes = payload.get("minutes")
    if not isinstance(minutes, list) or not minutes:
        problems.add("minutes", "must be a non-empty list")
        return None, problems.items
    if len(minutes) > max_minutes:
        problems.add("minutes", f"at most {max_minutes} minutes per batch, got {len(minutes)}; send several")
        return None, problems.items

    known = known_services
    latest_minute_start = now_s + CLOCK_SKEW_S - MINUTE_S
    batch = PushBatch(gateway=gateway)
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
    batch: PushBatch,
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
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.add(f"{where}[{j}].{value_key}", "must be a finite number")
            continue
        if is_counter:
            if value < 0:
                problems.add(f"{where}[{j}].{value_key}", "must not be negative (send per-minute increases)")
                continue
            if name in EVENT_COUNTERS and value != int(value):
                problems.add(f"{where}[{j}].{value_key}", "counts events: must be a whole number")
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
