"""Parsers of release request bodies: wave plans, target selectors, instants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from controlplane.errors import ValidationFailed
from routing.fleet.labels import LABEL_KEY_RULE, label_key_ok
from routing.releases import machine
from slo.spec import Problem

MAX_WAVES = 10

MAX_BAKE_S = 7 * 86_400


def int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def parse_waves(raw: Any, problems: list[Problem]) -> list[dict[str, Any]]:
    if raw is None:
        return [{"percent": p, "bake_s": b} for p, b in machine.DEFAULT_WAVES]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_WAVES:
        problems.append(Problem("waves", f"a list of 1 to {MAX_WAVES} waves"))
        return []
    out, previous = [], 0.0
    for index, wave in enumerate(raw):
        path = f"waves[{index}]"
        if not isinstance(wave, dict):
            problems.append(Problem(path, "an object with percent and bake_s"))
            continue
        percent, bake_s = wave.get("percent"), wave.get("bake_s", 0)
        if isinstance(percent, bool) or not isinstance(percent, int | float) or not previous < percent <= 100:
            problems.append(
                Problem(f"{path}.percent", f"a number above {previous:g} and at most 100 (cumulative)")
            )
            continue
        if isinstance(bake_s, bool) or not isinstance(bake_s, int) or not 0 <= bake_s <= MAX_BAKE_S:
            problems.append(Problem(f"{path}.bake_s", f"whole seconds from 0 to {MAX_BAKE_S}"))
            continue
        previous = float(percent)
        out.append({"percent": float(percent), "bake_s": bake_s})
    if out and out[-1]["percent"] != 100:
        problems.append(Problem("waves", "the last wave must reach 100%"))
    return out


def parse_selector(raw: Any, problems: list[Problem]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem("target", "an object: tier, region, labels, gateways"))
        return {}
    out: dict[str, Any] = {}
    for key in sorted(set(raw) - {"tier", "region", "labels", "gateways"}):
        problems.append(Problem(f"target.{key}", "unknown field"))
    for key in ("tier", "region"):
        if raw.get(key) not in (None, ""):
            if not isinstance(raw[key], str):
                problems.append(Problem(f"target.{key}", "a string"))
            else:
                out[key] = raw[key]
    labels = raw.get("labels")
    if labels is not None:
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            problems.append(Problem("target.labels", "an object of string values"))
        elif bad_keys := [key for key in labels if not label_key_ok(key)]:
            problems += [Problem(f"target.labels.{key}", f"label key: {LABEL_KEY_RULE}") for key in bad_keys]
        else:
            out["labels"] = labels
    ids = raw.get("gateways")
    if ids is not None:
        if not isinstance(ids, list) or not ids or any(int_or_none(i) is None for i in ids):
            problems.append(Problem("target.gateways", "a non-empty list of gateway ids"))
        else:
            out["gateways"] = sorted({int_or_none(i) for i in ids})
    return out


def parse_at(value: Any, path: str = "at") -> datetime:
    """An ISO 8601 instant with a timezone, or a 400."""
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well-formed but impossible, e.g. minute 60
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValidationFailed("invalid input", problems=[Problem(path, "an ISO 8601 time with a timezone")])
    return moment
