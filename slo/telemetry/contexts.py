"""Validate a pushed batch of request-context samples (pure: no Django, no I/O).

A gateway keeps, per minute, a uniform sample of the request contexts its routing decisions saw
(at most `MAX_CONTEXTS_PER_MINUTE`) and how many requests it decided that minute, and pushes them
to `POST /api/v1/gateways/<id>/contexts/` (docs/telemetry.md, "Request contexts"). The release
simulation gate replays them through the candidate routing policy, so a rule whose `when` condition
real traffic meets is exercised as real traffic would exercise it.

Only the fields a routing policy can read are kept (`CONTEXT_FIELDS`); other fields are dropped
and named in the answer. A batch with any problem is refused whole, like a telemetry batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from slo import contract as c
from slo.spec import Problem
from slo.telemetry.batch_format import CLOCK_SKEW_S, MINUTE_S, parse_minute

MAX_CONTEXTS_PER_MINUTE = 200
MAX_BATCH_MINUTES = 180
MAX_TEXT_LEN = 128
MAX_PROBLEMS = 50

# The request-context fields a routing policy reads (its `when` conditions, admission control and
# region choice), by type. tests/slo/telemetry/test_contexts.py holds this table to the policy
# engine's, so a condition on a field gateways cannot report is caught there.
NUMBER_FIELDS = (
    "confidence",
    "temperature_c",
    "memory_headroom_pct",
    "queue_ratio",
    "queue_depth",
    "active_workers",
    "request_age_ms",
    "rtt_ms",
    "payload_bytes",
    "load_pct",
    "observed_rps",
)
TEXT_FIELDS = ("service_class", "priority", "network_quality", "region", "model")
BOOL_FIELDS = ("privacy",)
TEXT_LIST_FIELDS = ("unhealthy_regions",)
NUMBER_MAP_FIELDS = ("region_rtt_ms",)
CONTEXT_FIELDS = frozenset(NUMBER_FIELDS + TEXT_FIELDS + BOOL_FIELDS + TEXT_LIST_FIELDS + NUMBER_MAP_FIELDS)
_NUMBERS, _TEXTS, _BOOLS, _LISTS, _MAPS = (
    frozenset(NUMBER_FIELDS),
    frozenset(TEXT_FIELDS),
    frozenset(BOOL_FIELDS),
    frozenset(TEXT_LIST_FIELDS),
    frozenset(NUMBER_MAP_FIELDS),
)
_BATCH_KEYS = frozenset({"contract_version", "gateway", "sent_at", "minutes"})
_MINUTE_KEYS = frozenset({"minute", "requests", "contexts"})


@dataclass(frozen=True)
class ContextMinute:
    """One minute of one gateway: `requests` decided, `contexts` a uniform sample of them."""

    minute: int  # whole minutes since the epoch, UTC
    requests: int
    contexts: list[dict[str, Any]]


@dataclass(frozen=True)
class ContextBatch:
    minutes: list[ContextMinute]
    dropped_fields: list[str] = field(default_factory=list)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT_LEN


def _context(raw: Any, path: str, problems: list[Problem], dropped: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.append(Problem(path, "must be an object"))
        return {}
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None:
            continue  # a field the gateway did not know for this request
        where = f"{path}.{name}"
        if name in _NUMBERS:
            ok = _is_number(value)
            reason = "must be a finite number"
        elif name in _TEXTS:
            ok = _is_text(value)
            reason = f"must be a string of at most {MAX_TEXT_LEN} characters"
        elif name in _BOOLS:
            ok = isinstance(value, bool)
            reason = "must be true or false"
        elif name in _LISTS:
            ok = isinstance(value, list) and len(value) <= 64 and all(_is_text(v) for v in value)
            reason = "must be a list of at most 64 strings"
        elif name in _MAPS:
            ok = (
                isinstance(value, dict)
                and len(value) <= 64
                and all(_is_text(k) and _is_number(v) for k, v in value.items())
            )
            reason = "must map at most 64 names to finite numbers"
        else:
            dropped.add(str(name)[:MAX_TEXT_LEN])
            continue
        if not ok:
            problems.append(Problem(where, reason))
            continue
        out[name] = value
    return out


def parse_context_batch(
    payload: Any,
    *,
    now_s: float,
    oldest_minute: int | None = None,
) -> tuple[ContextBatch | None, list[Problem]]:
    """(batch, []) or (None, problems). `now_s` is the server's clock (epoch seconds).

    Minutes are aligned, unique, not older than `oldest_minute` and not ahead of the server's clock
    by more than CLOCK_SKEW_S (the minute in progress may be sent: a sample is valid before its
    minute ends, and a later, larger one replaces it). `requests` is a non-negative integer no
    smaller than the sample.
    """
    if not isinstance(payload, dict):
        return None, [Problem("", "the body must be a JSON object")]
    problems: list[Problem] = []
    for key in sorted(set(payload) - _BATCH_KEYS):
        problems.append(Problem(str(key), "unknown field"))
    if payload.get("contract_version") != c.CONTRACT_VERSION:
        problems.append(Problem("contract_version", f"must be {c.CONTRACT_VERSION}"))
    minutes_raw = payload.get("minutes")
    if not isinstance(minutes_raw, list) or not minutes_raw:
        problems.append(Problem("minutes", "a non-empty list"))
        return None, problems
    if len(minutes_raw) > MAX_BATCH_MINUTES:
        problems.append(Problem("minutes", f"at most {MAX_BATCH_MINUTES} minutes per batch; send several"))
        return None, problems
    latest = int((now_s + CLOCK_SKEW_S) // MINUTE_S)
    seen: set[int] = set()
    dropped: set[str] = set()
    minutes: list[ContextMinute] = []
    for index, item in enumerate(minutes_raw):
        where = f"minutes[{index}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, "must be an object"))
            continue
        for key in sorted(set(item) - _MINUTE_KEYS):
            problems.append(Problem(f"{where}.{key}", "unknown field"))
        minute = parse_minute(item.get("minute"))
        if minute is None:
            problems.append(Problem(f"{where}.minute", "an ISO 8601 UTC timestamp on a whole minute"))
        elif minute > latest:
            problems.append(Problem(f"{where}.minute", "is in the future"))
        elif oldest_minute is not None and minute < oldest_minute:
            problems.append(Problem(f"{where}.minute", "is older than the retention"))
        elif minute in seen:
            problems.append(Problem(f"{where}.minute", "appears twice in the batch"))
        else:
            seen.add(minute)
        contexts_raw = item.get("contexts")
        if not isinstance(contexts_raw, list):
            problems.append(Problem(f"{where}.contexts", "a list of request contexts"))
            contexts_raw = []
        elif len(contexts_raw) > MAX_CONTEXTS_PER_MINUTE:
            problems.append(Problem(f"{where}.contexts", f"at most {MAX_CONTEXTS_PER_MINUTE} per minute"))
            contexts_raw = []
        requests = item.get("requests")
        if isinstance(requests, bool) or not isinstance(requests, int) or requests < 0:
            problems.append(Problem(f"{where}.requests", "a non-negative integer"))
        elif requests < len(contexts_raw):
            problems.append(Problem(f"{where}.requests", "smaller than the number of contexts sampled"))
        contexts = [
            _context(raw, f"{where}.contexts[{i}]", problems, dropped) for i, raw in enumerate(contexts_raw)
        ]
        if len(problems) >= MAX_PROBLEMS:
            break
        if minute is not None and isinstance(requests, int):
            minutes.append(ContextMinute(minute, requests, contexts))
    if problems:
        return None, problems[:MAX_PROBLEMS]
    return ContextBatch(minutes, sorted(dropped)), []
