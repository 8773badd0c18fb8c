"""Validate a pushed batch of per-request decision records (pure: no Django, no I/O).

A gateway keeps a bounded sample of the requests it decided (which rule matched, the route chain,
the cache layers consulted with their key fields, the model version and bundle revision it ran,
the outcome and latency) and pushes them to `POST /api/v1/gateways/<id>/decisions/`
(docs/decisions.md). The records answer "why did request X go where it went" from what happened.

A batch with any problem is refused whole, with every problem's field path (up to MAX_PROBLEMS).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slo import contract as c
from slo.spec import Problem

MAX_BATCH_RECORDS = 5000
MAX_CHAIN = 8
MAX_CACHE_LAYERS = 8
MAX_KEY_FIELDS = 16
MAX_TEXT_LEN = 128
MAX_PROBLEMS = 50
MAX_LATENCY_MS = 3_600_000.0
CLOCK_SKEW_S = 120
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
OUTCOMES = c.OUTCOMES  # ok | error | timeout | shed

_BATCH_KEYS = frozenset({"contract_version", "gateway", "sent_at", "records"})
_RECORD_KEYS = frozenset(
    {
        "request_id",
        "at",
        "rule",
        "admission",
        "chain",
        "route",
        "cache",
        "model_version",
        "revision",
        "outcome",
        "latency_ms",
    }
)
_REQUIRED = ("request_id", "at", "chain", "route", "outcome", "latency_ms")
_CACHE_KEYS = frozenset({"layer", "result", "key"})


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decided request, as validated. `at` is epoch seconds (UTC)."""

    request_id: str
    at: float
    rule: str | None
    admission: str | None
    chain: tuple[str, ...]
    route: str
    cache: tuple[dict[str, Any], ...]
    model_version: str | None
    revision: int | None
    outcome: str
    latency_ms: float


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# Names seen valid (routes, layers, key fields repeat in every record): a set lookup instead of
# a regex match on the ingest path. Bounded; only ever holds strings that passed NAME_RE.
_VALID_NAMES: set[str] = set()


def _name(value: Any) -> bool:
    if type(value) is not str:
        return False
    if value in _VALID_NAMES:
        return True
    if NAME_RE.match(value) is None:
        return False
    if len(_VALID_NAMES) < 4096:
        _VALID_NAMES.add(value)
    return True


def parse_instant(text: Any) -> float | None:
    """Epoch seconds of an ISO 8601 timestamp with a UTC offset, or None."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()


def _cache(raw: Any, path: str, problems: list[Problem]) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_CACHE_LAYERS:
        problems.append(Problem(path, f"a list of at most {MAX_CACHE_LAYERS} lookups"))
        return ()
    out = []
    for i, lookup in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(lookup, dict):
            problems.append(Problem(where, "must be an object with layer, result and key"))
            continue
        if not lookup.keys() <= _CACHE_KEYS:
            for key in sorted(set(lookup) - _CACHE_KEYS, key=str):
                problems.append(Problem(f"{where}.{key}", "unknown field"))
        ok = True
        for name in ("layer", "result"):
            if not _name(lookup.get(name)):
                problems.append(Problem(f"{where}.{name}", "required: a name of at most 64 characters"))
                ok = False
        key_fields = lookup.get("key", [])
        if (
            not isinstance(key_fields, list)
            or len(key_fields) > MAX_KEY_FIELDS
            or not all(_name(f) for f in key_fields)
        ):
            problems.append(Problem(f"{where}.key", f"a list of at most {MAX_KEY_FIELDS} field names"))
            ok = False
        if ok:
            out.append({"layer": lookup["layer"], "result": lookup["result"], "key": list(key_fields)})
    return tuple(out)


def _record(
    raw: Any, path: str, problems: list[Problem], *, oldest_s: float, latest_s: float
) -> DecisionRecord | None:
    if not isinstance(raw, dict):
        problems.append(Problem(path, "must be an object"))
        return None
    before = len(problems)
    if not raw.keys() <= _RECORD_KEYS:
        for key in sorted(set(raw) - _RECORD_KEYS, key=str):
            problems.append(Problem(f"{path}.{key}", "unknown field"))
    for key in _REQUIRED:
        if raw.get(key) is None:
            problems.append(Problem(f"{path}.{key}", "required"))
    request_id = raw.get("request_id")
    if request_id is not None and not (isinstance(request_id, str) and REQUEST_ID_RE.match(request_id)):
        problems.append(Problem(f"{path}.request_id", "1 to 64 characters of letters, digits and ._:-"))
    at = parse_instant(raw.get("at")) if raw.get("at") is not None else None
    if raw.get("at") is not None:
        if at is None:
            problems.append(Problem(f"{path}.at", "an ISO 8601 time with a UTC offset"))
        elif at < oldest_s:
            problems.append(Problem(f"{path}.at", "older than the retention: not stored"))
        elif at > latest_s:
            problems.append(
                Problem(f"{path}.at", f"ahead of the server's clock by more than {CLOCK_SKEW_S} s")
            )
    for key in ("rule", "admission", "model_version"):
        value = raw.get(key)
        if value is not None and not (isinstance(value, str) and 0 < len(value) <= MAX_TEXT_LEN):
            problems.append(Problem(f"{path}.{key}", f"a string of 1 to {MAX_TEXT_LEN} characters, or null"))
    chain = raw.get("chain")
    if chain is not None and not (
        isinstance(chain, list) and 0 < len(chain) <= MAX_CHAIN and all(_name(r) for r in chain)
    ):
        problems.append(Problem(f"{path}.chain", f"a list of 1 to {MAX_CHAIN} route names"))
    route = raw.get("route")
    if route is not None and not _name(route):
        problems.append(Problem(f"{path}.route", "a route name of at most 64 characters"))
    revision = raw.get("revision")
    if revision is not None and not (
        isinstance(revision, int) and not isinstance(revision, bool) and revision >= 0
    ):
        problems.append(Problem(f"{path}.revision", "a non-negative integer, or null"))
    outcome = raw.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        problems.append(Problem(f"{path}.outcome", f"one of {', '.join(OUTCOMES)}"))
    latency = raw.get("latency_ms")
    if latency is not None and not (_is_number(latency) and 0 <= latency <= MAX_LATENCY_MS):
        problems.append(Problem(f"{path}.latency_ms", f"a number from 0 to {MAX_LATENCY_MS:.0f}"))
    cache = _cache(raw.get("cache"), f"{path}.cache", problems)
    if len(problems) > before or at is None:
        return None
    # every required field is present and checked: a missing one is a problem above
    return DecisionRecord(
        request_id=raw["request_id"],
        at=at,
        rule=raw.get("rule"),
        admission=raw.get("admission"),
        chain=tuple(raw["chain"]),
        route=raw["route"],
        cache=cache,
        model_version=raw.get("model_version"),
        revision=revision,
        outcome=raw["outcome"],
        latency_ms=float(raw["latency_ms"]),
    )


def parse_decision_batch(
    payload: Any, *, now_s: float, oldest_s: float
) -> tuple[list[DecisionRecord] | None, list[Problem]]:
    """(records, []) or (None, problems). `now_s` is the server's clock; records older than
    `oldest_s` (the retention) or ahead of the clock by more than CLOCK_SKEW_S are refused.
    A request id repeated within the batch is a problem: one request, one record."""
    if not isinstance(payload, dict):
        return None, [Problem("", "the body must be a JSON object")]
    problems: list[Problem] = []
    for key in sorted(set(payload) - _BATCH_KEYS, key=str):
        problems.append(Problem(str(key), "unknown field"))
    if payload.get("contract_version") != c.CONTRACT_VERSION:
        problems.append(Problem("contract_version", f"must be {c.CONTRACT_VERSION}"))
    raw_records = payload.get("records")
    if not isinstance(raw_records, list) or not raw_records:
        problems.append(Problem("records", "a non-empty list"))
        return None, problems
    if len(raw_records) > MAX_BATCH_RECORDS:
        problems.append(Problem("records", f"at most {MAX_BATCH_RECORDS} records per batch; send several"))
        return None, problems
    records: list[DecisionRecord] = []
    seen: set[str] = set()
    latest_s = now_s + CLOCK_SKEW_S
    for i, raw in enumerate(raw_records):
        record = _record(raw, f"records[{i}]", problems, oldest_s=oldest_s, latest_s=latest_s)
        if record is not None:
            if record.request_id in seen:
                problems.append(Problem(f"records[{i}].request_id", "repeated in this batch"))
            seen.add(record.request_id)
            records.append(record)
        if len(problems) >= MAX_PROBLEMS:
            problems = problems[:MAX_PROBLEMS]
            problems.append(Problem("records", f"more than {MAX_PROBLEMS} problems; the rest are not listed"))
            break
    if problems:
        return None, problems
    return records, []
