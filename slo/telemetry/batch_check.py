"""The full check of a pushed batch (pure: no Django, no I/O): every problem with its path.

`slo.telemetry.batch.parse_push_batch` runs the lean pass first and falls back to this check for
anything the lean pass does not recognise as valid; only this check describes what is wrong
(`minutes[2].counters[5].labels.route`), at most MAX_PROBLEMS problems per batch.
"""

from __future__ import annotations

import math
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from slo import contract as c
from slo.spec import Problem
from slo.telemetry.batch_format import (
    BATCH_KEYS,
    CLOCK_SKEW_S,
    COUNTER_LABELS,
    EVENT_COUNTERS,
    GAUGE_LABELS,
    MAX_BATCH_MINUTES,
    MAX_BATCH_SAMPLES,
    MAX_EVENT_INCREASE,
    MAX_FREE_LABEL_LEN,
    MAX_PROBLEMS,
    MAX_VALUE,
    MINUTE_S,
    OPTIONAL_LABELS,
    Sample,
    le_label,
    parse_le,
    parse_minute,
    parse_sent_at,
)

_SPLIT_OUT = frozenset({"service", "tier", "le"})


class Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(Problem(path, message))

    @property
    def full(self) -> bool:
        return len(self.items) >= MAX_PROBLEMS


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


def parse_checked(
    payload: Any,
    *,
    known_services: Container[str],
    now_s: float,
    oldest_minute: int | None = None,
    max_minutes: int = MAX_BATCH_MINUTES,
    max_samples: int = MAX_BATCH_SAMPLES,
) -> tuple[_Checked | None, list[Problem]]:
    """The full check: (batch, []) or (None, problems with their paths). See `parse_push_batch`."""
    problems = Problems()
    if not isinstance(payload, dict):
        return None, [Problem("", "the batch must be a JSON object")]
    unknown = sorted(set(payload) - BATCH_KEYS)
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
            problems.add(
                f"{where}.minute", "must be an ISO 8601 timestamp with a UTC offset, aligned to a minute"
            )
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
            counters,
            f"{where}.counters",
            minute,
            COUNTER_LABELS,
            "increase",
            known,
            batch,
            problems,
            label_cache,
        )
        _parse_items(
            gauges, f"{where}.gauges", minute, GAUGE_LABELS, "value", known, batch, problems, label_cache
        )
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
    problems: Problems,
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
            problems.add(
                f"{where}[{j}].name",
                f"unknown metric {name!r}" if isinstance(name, str) else "must be a string",
            )
            continue
        if len(item) != 3 or "labels" not in item or value_key not in item:
            extra = sorted(set(item) - {"name", "labels", value_key})
            problems.add(
                f"{where}[{j}]",
                f"needs exactly name, labels and {value_key}" + (f"; unknown {extra}" if extra else ""),
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
                    problems.add(
                        f"{where}[{j}].{value_key}",
                        f"at most {MAX_EVENT_INCREASE:,} events per series and minute",
                    )
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
            canonical = canonical_labels(name, labels, allowed, known, f"{where}[{j}]", problems)
            if canonical is None:
                continue
            if cache_key is not None:
                label_cache[cache_key] = canonical
        series, service, tier, le = canonical
        key = (name, service, tier, series, le)
        if key in seen:
            problems.add(
                f"{where}[{j}]", "this series is listed twice in the minute (le spellings count as one)"
            )
            continue
        seen.add(key)
        append(Sample(minute, name, service, tier, series, le, float(value), labels))


def canonical_labels(
    name: str,
    labels: dict[str, Any],
    allowed: dict[str, tuple[str, ...] | None],
    known: Container[str],
    path: str,
    problems: Problems,
) -> tuple[str, str, str, float | None] | None:
    """(series, service, tier, le) of valid labels, or None after adding the problems."""
    if labels.keys() != allowed.keys() and not (
        labels.keys() <= allowed.keys() and allowed.keys() - labels.keys() <= OPTIONAL_LABELS
    ):
        missing = sorted(allowed.keys() - labels.keys() - OPTIONAL_LABELS)
        extra = sorted(labels.keys() - allowed.keys())
        detail = "; ".join(
            x for x in (f"missing {missing}" if missing else "", f"unknown {extra}" if extra else "") if x
        )
        problems.add(f"{path}.labels", f"labels of {name} are {sorted(allowed)}: {detail}")
        return None
    ok = True
    le: float | None = None
    for label, choices in allowed.items():
        if label not in labels:
            continue  # an optional label left out
        text = labels[label]
        if not isinstance(text, str) or not text:
            problems.add(f"{path}.labels.{label}", "must be a non-empty string")
            ok = False
        elif label == "le":
            le = parse_le(text)
            if le is None:
                problems.add(
                    f"{path}.labels.le", f"{text!r} is not a bucket boundary (a number >= 0 or +Inf)"
                )
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
            problems.add(
                f"{path}.labels.{label}", f"at most {MAX_FREE_LABEL_LEN} printable characters, no ',' or '='"
            )
            ok = False
    if not ok:
        return None
    series = ",".join(f"{k}={labels[k]}" for k in sorted(labels) if k not in _SPLIT_OUT)
    return series, labels.get("service", ""), labels.get("tier", ""), le


def _check_histograms(samples: list[Sample], items: list[Any], where: str, problems: Problems) -> None:
    """Cumulative buckets never decrease as `le` grows and never exceed `_count` (+Inf equals it)."""
    buckets: dict[tuple[str, str, str, str], list[tuple[float, float, int]]] = {}
    counts: dict[tuple[str, str, str, str], tuple[float, int]] = {}
    for s in samples:
        name = s.name
        if name[-7:] == "_bucket":
            le = s.le if s.le is not None else math.inf
            buckets.setdefault((name[:-7], s.service, s.tier, s.series), []).append(
                (le, s.value, id(s.labels))
            )
        elif name[-6:] == "_count":
            counts[(name[:-6], s.service, s.tier, s.series)] = (s.value, id(s.labels))
    if not buckets:
        return
    position: dict[int, int] | None = None

    def at(label_id: int) -> str:
        # map a sample back to its place in the request, only when there is a problem to report
        nonlocal position
        if position is None:
            position = {
                id(i["labels"]): j for j, i in enumerate(items) if isinstance(i, dict) and "labels" in i
            }
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
            problems.add(
                at(top_id), f"bucket le={le_label(top_le)} ({top_value:g}) exceeds _count ({count:g})"
            )
