"""The seed's two other budget responses (docs/capacity.md, "Budget responses"):

- **Raise the semantic cache threshold** (`cache_threshold`): the first semantic layer's user-facing
  similarity threshold goes one step up the tuning grid, as a draft cache-config version. Its effect
  is estimated by the threshold tuning's own arithmetic on the labelled lookups a person last gave
  `recommend-threshold` for that config (hit rate and false-hit rate at both thresholds, and the
  cost per 1,000 lookups the lost hits add). No samples, or no fewer false hits: no proposal.
- **Freeze model churn** (`model_freeze`): a hold on model-version releases of the service for
  `HOLD_HOURS`, proposed when a model version was deployed in the last `CHURN_DAYS` days or a
  model-version release is in flight. Approved, the error-budget gate refuses model-version
  releases whose kind the budget policy's `freeze_allowed_change_kinds` does not allow.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from controlplane.audit import audit_record
from routing.documents import selectors as documents
from routing.documents.kinds import CACHE_CONFIG
from routing.documents.services import cache_config_update
from routing.documents.tuning import _cost_saved_per_hit
from routing.models.documents import CacheConfigDocument
from routing.models.releases import ModelVersion, Release
from routing.models.responses import CACHE_THRESHOLD, MODEL_FREEZE, BudgetResponse, CacheThresholdSamples
from routing.policy.threshold import _GRID, DEFAULT_MIN_SAMPLES
from routing.releases.machine import FINAL_STATES
from slo.models.budget import AlertState

HOLD_HOURS = 24
CHURN_DAYS = 7


def threshold_at(samples: list[tuple[float, bool]], threshold: float) -> dict[str, Any]:
    """Hit rate and false-hit rate of labelled lookups at one threshold (as the tuning counts)."""
    hits = sum(1 for sim, _ in samples if sim >= threshold)
    wrong = sum(1 for sim, ok in samples if sim >= threshold and not ok)
    return {
        "threshold": threshold,
        "hit_rate": hits / len(samples) if samples else 0.0,
        "false_hit_rate": wrong / hits if hits else None,
    }


def next_threshold(current: float) -> float | None:
    """The next step of the tuning grid above `current` (None at the top)."""
    above = [t for t in _GRID if t > current + 1e-9]
    return above[0] if above else None


def propose_cache_threshold(
    alert: AlertState, now: datetime, trigger: dict[str, Any]
) -> BudgetResponse | None:
    service = alert.service
    line = CacheConfigDocument.objects.filter(service=service).first()
    if line is None:
        return None
    baseline = documents.baseline_version(kind=CACHE_CONFIG, line=line)
    stored = CacheThresholdSamples.objects.filter(line=line).first()
    if baseline is None or stored is None:
        return None
    samples = [(float(sim), bool(ok)) for sim, ok in stored.samples]
    if len(samples) < DEFAULT_MIN_SAMPLES:
        return None
    candidate = copy.deepcopy(baseline.document)
    layer = next(
        (x for x in candidate.get("layers", []) if x.get("kind") == "semantic" and x.get("semantic")), None
    )
    if layer is None:
        return None
    current = float(layer["semantic"]["user_facing"])
    raised = next_threshold(current)
    if raised is None:
        return None
    before, after = threshold_at(samples, current), threshold_at(samples, raised)
    if before["false_hit_rate"] is None or after["false_hit_rate"] is None:
        return None
    if after["false_hit_rate"] >= before["false_hit_rate"]:
        return None
    layer["semantic"]["user_facing"] = raised
    cost = _cost_saved_per_hit(service, now)
    effect = {
        "samples": len(samples),
        "samples_recorded_at": stored.recorded_at,
        "layer": layer["name"],
        "current": before,
        "proposed": after,
        "false_hit_rate_shift": after["false_hit_rate"] - before["false_hit_rate"],
        "hit_rate_shift": after["hit_rate"] - before["hit_rate"],
        "cost_saved_per_hit": cost,
        # fewer hits: those lookups are served by a route instead
        "cost_per_1000_lookups_shift_usd": 1000 * (before["hit_rate"] - after["hit_rate"]) * cost["usd"],
    }
    summary = (
        f"raise the {layer['name']} user-facing similarity threshold {current:g} -> {raised:g}: false hits "
        f"{before['false_hit_rate']:.2%} -> {after['false_hit_rate']:.2%} of hits, hit rate "
        f"{before['hit_rate']:.1%} -> {after['hit_rate']:.1%} on {len(samples)} labelled lookups"
    )
    from routing.capacity.responses import ACTOR, _jsonable

    with transaction.atomic():
        line, created = cache_config_update(
            actor=ACTOR,
            line_id=line.pk,
            document=candidate,
            note=f"budget response: {summary}"[:2000],
            now=now,
        )
        if not created:
            return None
        response = BudgetResponse.objects.create(
            service=service,
            kind=CACHE_THRESHOLD,
            summary=summary[:500],
            trigger_key=alert.key,
            trigger_since=alert.since or now,
            trigger=trigger,
            line_id=line.pk,
            baseline_version=baseline.version,
            version=line.current_version,
            simulation=_jsonable(effect),
            created_at=now,
        )
        audit_record(actor=ACTOR, action="propose", obj=response, after={"summary": response.summary})
    return response


def propose_model_freeze(alert: AlertState, now: datetime, trigger: dict[str, Any]) -> BudgetResponse | None:
    service = alert.service
    recent = ModelVersion.objects.filter(service=service, deployed_at__gte=now - timedelta(days=CHURN_DAYS))
    pending = (
        Release.objects.filter(service=service, model_version__isnull=False)
        .exclude(state__in=FINAL_STATES)
        .select_related("model_version")
    )
    deployed = [
        {"model_version": m.label, "deployed_at": m.deployed_at} for m in recent.order_by("-deployed_at")
    ]
    held = [
        {"release": r.pk, "state": r.state, "kind": r.kind, "model_version": r.model_version.label}
        for r in pending.order_by("pk")
    ]
    if not deployed and not held:
        return None
    from routing.capacity.responses import ACTOR, _jsonable
    from slo.budget.selectors import policy_rules_for

    rules, _ = policy_rules_for(service=service)
    stopped = [h for h in held if h["kind"] not in rules.freeze_allowed_change_kinds]
    evidence = {
        "deployed_in_last_days": CHURN_DAYS,
        "deployed": deployed,
        "releases_held": stopped,
        "releases_allowed": [h for h in held if h["kind"] in rules.freeze_allowed_change_kinds],
        "freeze_allowed_change_kinds": list(rules.freeze_allowed_change_kinds),
        "hold_hours": HOLD_HOURS,
    }
    summary = (
        f"freeze model churn for {HOLD_HOURS} h: {len(deployed)} model version(s) deployed in the last "
        f"{CHURN_DAYS} days, {len(stopped)} model-version release(s) would be held"
    )
    with transaction.atomic():
        response = BudgetResponse.objects.create(
            service=service,
            kind=MODEL_FREEZE,
            summary=summary[:500],
            trigger_key=alert.key,
            trigger_since=alert.since or now,
            trigger=trigger,
            hold_hours=HOLD_HOURS,
            simulation=_jsonable(evidence),
            created_at=now,
        )
        audit_record(actor=ACTOR, action="propose", obj=response, after={"summary": response.summary})
    return response


def model_freeze_apply(*, response: BudgetResponse, now: datetime) -> dict[str, Any]:
    """Hold the service's model-version releases (approving a model_freeze response)."""
    from routing.models.releases import ReleaseSettings

    settings, _ = ReleaseSettings.objects.get_or_create(service=response.service)
    until = now + timedelta(hours=response.hold_hours or HOLD_HOURS)
    before = {"model_freeze_until": settings.model_freeze_until}
    settings.model_freeze_until = max(until, settings.model_freeze_until or until)
    settings.model_freeze_reason = f"budget response #{response.pk}: {response.summary}"[:2000]
    settings.updated_at = now
    settings.save(update_fields=["model_freeze_until", "model_freeze_reason", "updated_at"])
    return {"before": before, "model_freeze_until": settings.model_freeze_until}
