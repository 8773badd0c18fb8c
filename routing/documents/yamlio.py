"""Documents from YAML or JSON text, safely (pure: no Django).

YAML is read by controlplane.safeload, which refuses aliases and merge keys (a few lines of nested
aliases expand to gigabytes: the "billion laughs"), NUL characters, deep nesting and oversized
streams, and does not turn `2025-03-01` into a date, so what comes out is plain JSON data or a list
of problems. Every stored document passes `json_problems` first: a NaN,
a non-string key or a date would otherwise reach PostgreSQL's jsonb and fail as a 500.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from typing import Any

from controlplane import safeload
from slo.spec import Problem

MAX_DEPTH = safeload.MAX_DEPTH


def load_yaml(text: str) -> tuple[Any, list[Problem]]:
    """(data, []) or (None, problems). JSON is YAML, so this reads both."""
    try:
        data = safeload.load_yaml(text)
    except safeload.InputRefused as exc:
        return None, [Problem(exc.path, exc.message)]
    problems = json_problems(data)
    return (data, []) if not problems else (None, problems)


def json_problems(value: Any, path: str = "", depth: int = 0) -> list[Problem]:
    """Why `value` is not plain, storable JSON (non-string keys, NaN, dates...), or []."""
    if depth > MAX_DEPTH:
        return [Problem(path, f"nested deeper than {MAX_DEPTH} levels")]
    if isinstance(value, dict):
        out: list[Problem] = []
        for key, item in value.items():
            if not isinstance(key, str):
                out.append(Problem(path, f"key {key!r} is not a string (quote it)"))
                continue
            out += json_problems(item, f"{path}.{key}" if path else key, depth + 1)
        return out
    if isinstance(value, list):
        out = []
        for index, item in enumerate(value):
            out += json_problems(item, f"{path}[{index}]", depth + 1)
        return out
    if isinstance(value, float) and not math.isfinite(value):
        return [Problem(path, "must be a finite number")]
    if value is None or isinstance(value, str | int | float | bool):
        return []
    return [Problem(path, f"unsupported value of type {type(value).__name__}")]


def canonical_sha256(document: Any) -> str:
    """Hash of the canonical JSON form: equal documents hash alike whatever their key order."""
    payload = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def samples_from_csv(text: str, *, limit: int) -> tuple[list[tuple[float, bool]], list[Problem]]:
    """Threshold-tuning samples from CSV with a header naming `similarity` and `correct`."""
    reader = csv.DictReader(io.StringIO(text))
    fields = {name.strip().lower() for name in (reader.fieldnames or [])}
    if not {"similarity", "correct"} <= fields:
        return [], [Problem("csv", "needs a header row with the columns similarity and correct")]
    samples: list[tuple[float, bool]] = []
    problems: list[Problem] = []
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        raw = {"similarity": _number(row.get("similarity", "")), "correct": _flag(row.get("correct", ""))}
        sample, sample_problems = sample_from(raw, f"csv line {line}")
        problems += sample_problems
        if sample is not None:
            samples.append(sample)
        if len(samples) > limit:
            return [], [Problem("csv", f"more than {limit} samples")]
        if len(problems) >= 20:
            break
    return samples, problems


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _flag(text: str) -> Any:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return text


def sample_from(raw: Any, path: str) -> tuple[tuple[float, bool] | None, list[Problem]]:
    """One (similarity, correct) pair from `{"similarity": 0.93, "correct": true}`."""
    if not isinstance(raw, dict):
        return None, [Problem(path, "must be an object with similarity and correct")]
    similarity, correct = raw.get("similarity"), raw.get("correct")
    problems = []
    if (
        isinstance(similarity, bool)
        or not isinstance(similarity, int | float)
        or not (math.isfinite(similarity) and -1 <= similarity <= 1)
    ):
        problems.append(Problem(f"{path}.similarity", "a number between -1 and 1"))
    if not isinstance(correct, bool):
        problems.append(Problem(f"{path}.correct", "true or false"))
    if problems:
        return None, problems
    return (float(similarity), correct), []
