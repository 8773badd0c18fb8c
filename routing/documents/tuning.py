"""Semantic-cache threshold tuning for a stored cache config (glue over the pure recommender)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from django.utils import timezone

from controlplane.errors import ValidationFailed
from routing.documents import selectors
from routing.documents.kinds import CACHE_CONFIG
from routing.documents.simulation import route_stats_for
from routing.documents.validation import TIER_OF_ROUTE
from routing.documents.yamlio import sample_from, samples_from_csv
from routing.policy import CacheConfig, recommend_threshold
from slo.spec import Problem

MAX_SAMPLES = 200_000


def _samples(body: Mapping[str, Any]) -> list[tuple[float, bool]]:
    raw, csv_text = body.get("samples"), body.get("csv")
    if (raw is None) == (csv_text is None):
        raise ValidationFailed(
            "invalid input", problems=[Problem("samples", "give samples (a list) or csv (text)")]
        )
    if csv_text is not None:
        if not isinstance(csv_text, str):
            raise ValidationFailed("invalid input", problems=[Problem("csv", "CSV text")])
        samples, problems = samples_from_csv(csv_text, limit=MAX_SAMPLES)
    else:
        if not isinstance(raw, list):
            raise ValidationFailed("invalid input", problems=[Problem("samples", "a list of objects")])
        if len(raw) > MAX_SAMPLES:
            raise ValidationFailed("invalid input", problems=[Problem("samples", f"at most {MAX_SAMPLES}")])
        samples, problems = [], []
        for index, item in enumerate(raw):
            sample, item_problems = sample_from(item, f"samples[{index}]")
            problems += item_problems
            if sample is not None:
                samples.append(sample)
            if len(problems) >= 20:
                break
    if problems:
        raise ValidationFailed("invalid samples", problems=problems)
    return samples


def _cost_saved_per_hit(service: Any, now: datetime) -> dict[str, Any]:
    """What a hit saves: the mean cost of the non-cache routes the service runs on, less a lookup."""
    figures = route_stats_for(service=service, now=now)
    routes = [
        r for r in ("local", "private_cloud", "public_cloud") if TIER_OF_ROUTE[r] in (service.tiers or [])
    ]
    routes = routes or ["private_cloud"]
    served = sum(figures[r]["stats"]["cost_per_request_usd"] for r in routes) / len(routes)
    saved = max(0.0, served - figures["cache"]["stats"]["cost_per_request_usd"])
    measured = all(figures[r]["source"]["cost_per_request_usd"] == "measured" for r in [*routes, "cache"])
    return {"usd": saved, "source": "measured" if measured else "assumed", "routes": routes}


def _record_samples(line: Any, samples: list[tuple[float, bool]], now: datetime) -> None:
    """Keep the newest labelled lookups of the line: a cache_threshold budget response estimates
    its effect on them (routing/capacity/more_responses.py)."""
    from routing.models.responses import CacheThresholdSamples

    CacheThresholdSamples.objects.update_or_create(
        line=line, defaults={"samples": [[sim, ok] for sim, ok in samples], "recorded_at": now}
    )


def cache_config_recommend_threshold(
    *, line: Any, body: Mapping[str, Any], now: datetime | None = None, record: bool = False
) -> dict[str, Any]:
    """The lowest safe similarity threshold for the config's semantic layer from labelled samples.
    `record` (an operator asking) keeps the samples for budget responses; a viewer's ask stores nothing."""
    now = now or timezone.now()
    target = body.get("max_false_hit_rate", body.get("target_false_hit_rate"))
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 <= target <= 1:
        raise ValidationFailed(
            "invalid input", problems=[Problem("max_false_hit_rate", "a ratio from 0 to 1")]
        )
    given_cost = body.get("cost_saved_per_hit_usd")
    if given_cost is not None and (
        isinstance(given_cost, bool) or not isinstance(given_cost, int | float) or given_cost < 0
    ):
        raise ValidationFailed(
            "invalid input", problems=[Problem("cost_saved_per_hit_usd", "a non-negative number")]
        )
    samples = _samples(body)
    version_number = body.get("version")
    if version_number is not None and (
        isinstance(version_number, bool) or not isinstance(version_number, int)
    ):
        raise ValidationFailed("invalid input", problems=[Problem("version", "a version number")])
    row = selectors.version_get(kind=CACHE_CONFIG, line=line, version=version_number)
    config = CacheConfig.model_validate(row.document)
    layer_name = body.get("layer")
    semantic = [layer for layer in config.layers if layer.kind == "semantic"]
    if layer_name is not None:
        semantic = [layer for layer in semantic if layer.name == layer_name]
    layer = semantic[0] if semantic else None
    if given_cost is not None:
        cost = {"usd": float(given_cost), "source": "given"}
    else:
        cost = _cost_saved_per_hit(line.service, now)
    result = recommend_threshold(samples, float(target), cost["usd"])
    if record:
        _record_samples(line, samples, now)
    answer = asdict(result)
    answer["table"] = [asdict(item) for item in result.table]
    current = None
    if layer is not None and layer.semantic is not None:
        threshold = layer.semantic.user_facing
        hits = sum(1 for sim, _ in samples if sim >= threshold)
        wrong = sum(1 for sim, ok in samples if sim >= threshold and not ok)
        current = {
            "layer": layer.name,
            "threshold": threshold,
            "hit_rate": hits / len(samples) if samples else 0.0,
            "false_hit_rate": wrong / hits if hits else None,
        }
    notes = []
    if result.threshold is not None and result.threshold < 0.9:
        notes.append("a user-facing threshold below 0.9 needs a stated `reason` in the cache config")
    if layer is None:
        notes.append(
            "this cache config has no semantic layer" + (f" named {layer_name!r}" if layer_name else "")
        )
    return {
        "service": line.service.name,
        "version": row.version,
        "max_false_hit_rate": float(target),
        "recommendation": answer,
        "current": current,
        "cost_saved_per_hit": cost,
        "cost_saved_per_1000_lookups_usd": answer["cost_saved"],
        "notes": notes,
    }
