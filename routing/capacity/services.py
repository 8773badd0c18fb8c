"""Evaluate every pool's autoscaling rules and keep the recommendations, with hysteresis.

One evaluation (`capacity_evaluate`, the beat task every CAPACITY_WINDOW_S):

1. reads the health history of the fleet (routing.capacity.health.fleet_pools);
2. gives each pool its rules: the `autoscaling` section of the routing policy its gateways run
   (the applied bundles; the most common one if a rollout is half way), else the service's newest
   policy version, else the house defaults; and its latency SLO threshold (the tightest live latency
   SLO of the service on that tier or on every tier);
3. asks routing.capacity.plan for advice, with the cooldowns measured from the pool's last
   scale-out and scale-in recommendations;
4. opens a recommendation the first time advice appears, confirms it while the advice holds, and
   clears it only after the pool has gone CAPACITY_CLEAR_AFTER_S without that advice (a pool near
   a threshold keeps one open recommendation instead of a stream of opens and clears). Opens and
   clears are audited and notified through the alert channels (alert kind `capacity`);
5. raises the `device_health` alert of each gateway whose newest report is hot or short of memory
   (the thresholds of its rules), resolved once it has been calm for CAPACITY_CLEAR_AFTER_S.

Pools without telemetry in the lookback are left as they are: no data is not good data.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max

from controlplane.audit import audit_record_many
from routing.capacity.health import fleet_pools
from routing.capacity.plan import HOLD, Advice, Cooldowns, PoolKey, plan_pools
from routing.models.capacity import ACTIVE, CLEARED, SCALE_IN, SCALE_OUT, CapacityRecommendation
from routing.models.documents import RoutingPolicyVersion
from routing.models.fleet import GatewayRevision
from routing.policy.autoscale import device_stress_reason
from routing.policy.schema import Autoscaling
from slo.budget import alerts
from slo.models import Slo

ACTOR = "system:capacity"
DEFAULT_RULES = Autoscaling()


@dataclass
class EvaluationReport:
    pools: int = 0
    opened: list[int] = field(default_factory=list)
    confirmed: int = 0
    cleared: list[int] = field(default_factory=list)
    device_alerts: int = 0
    notifications: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "pools": self.pools,
            "opened": len(self.opened),
            "confirmed": self.confirmed,
            "cleared": len(self.cleared),
            "device_alerts": self.device_alerts,
            "notifications": self.notifications,
        }


class _RulesCache:
    def __init__(self) -> None:
        self._parsed: dict[str, Autoscaling] = {}

    def parse(self, raw: Any) -> Autoscaling | None:
        if not isinstance(raw, dict):
            return None
        text = json.dumps(raw, sort_keys=True)
        rules = self._parsed.get(text)
        if rules is None:
            try:
                rules = Autoscaling.model_validate(raw)
            except ValueError:
                return None
            self._parsed[text] = rules
        return rules


def _pool_rules(gateway_pool: dict[int, PoolKey], service_ids: dict[str, int]) -> dict[PoolKey, Autoscaling]:
    cache = _RulesCache()
    applied = GatewayRevision.objects.filter(
        gateway_id__in=list(gateway_pool), revision=F("gateway__applied_revision")
    ).values_list("gateway_id", "bundle__routing_policy__autoscaling")
    votes: dict[PoolKey, Counter[str]] = defaultdict(Counter)
    parsed: dict[str, Autoscaling] = {}
    for gateway_id, raw in applied:
        rules = cache.parse(raw)
        if rules is not None:
            text = rules.model_dump_json()
            parsed[text] = rules
            votes[gateway_pool[gateway_id]][text] += 1
    newest = RoutingPolicyVersion.objects.filter(
        line__service_id__in=list(service_ids.values()), version=F("line__current_version")
    ).values_list("line__service__name", "document__autoscaling")
    by_service = {name: cache.parse(raw) for name, raw in newest}
    out: dict[PoolKey, Autoscaling] = {}
    for key in set(gateway_pool.values()):
        if votes.get(key):
            out[key] = parsed[votes[key].most_common(1)[0][0]]
        else:
            out[key] = by_service.get(key.service) or DEFAULT_RULES
    return out


def _latency_thresholds(service_ids: dict[str, int]) -> dict[tuple[str, str], float]:
    """(service, tier) -> the tightest live latency SLO threshold; tier "" means every tier."""
    out: dict[tuple[str, str], float] = {}
    rows = Slo.objects.filter(
        service_id__in=list(service_ids.values()), archived_at__isnull=True, sli_kind="latency"
    ).values_list("service__name", "tier", "spec__sli__threshold_ms")
    for service, tier, threshold in rows:
        if isinstance(threshold, int | float) and threshold > 0:
            key = (service, tier or "")
            out[key] = min(out.get(key, float(threshold)), float(threshold))
    return out


def _cooldowns(service_ids: dict[str, int], now: datetime) -> dict[tuple[int, str, str, str, str], float]:
    rows = (
        CapacityRecommendation.objects.filter(
            service_id__in=list(service_ids.values()), action__in=[SCALE_OUT, SCALE_IN]
        )
        .values("service_id", "tier", "region", "pool", "action")
        .annotate(last=Max("opened_at"))
    )
    return {
        (r["service_id"], r["tier"], r["region"], r["pool"], r["action"]): (now - r["last"]).total_seconds()
        for r in rows
    }


def capacity_evaluate(*, now: datetime) -> EvaluationReport:
    """One evaluation of every pool (idempotent for one `now`: a repeat confirms what it opened)."""
    report = EvaluationReport()
    fleet = fleet_pools(now=now)
    report.pools = len(fleet.pools)
    if not fleet.pools:
        return report
    ids = fleet.service_ids
    rules = _pool_rules(fleet.gateway_pool, ids)
    latency = _latency_thresholds(ids)
    since = _cooldowns(ids, now)

    def latency_for(key: PoolKey) -> float | None:
        found = [latency[k] for k in ((key.service, key.tier), (key.service, "")) if k in latency]
        return min(found) if found else None

    active_actions: dict[tuple[int, str, str, str], set[str]] = defaultdict(set)
    for service_id, tier, region, pool, action in CapacityRecommendation.objects.filter(
        state=ACTIVE, service_id__in=list(ids.values())
    ).values_list("service_id", "tier", "region", "pool", "action"):
        active_actions[(service_id, tier, region, pool)].add(action)

    def cooldowns_for(key: PoolKey) -> Cooldowns:
        base = (ids[key.service], key.tier, key.region, key.pool)
        return Cooldowns(
            since.get((*base, SCALE_OUT)),
            since.get((*base, SCALE_IN)),
            frozenset(active_actions.get(base, ())),
        )

    advice = plan_pools(
        fleet.pools,
        rules_for=lambda key: rules.get(key, DEFAULT_RULES),
        latency_slo_ms_for=latency_for,
        cooldowns_for=cooldowns_for,
    )
    with transaction.atomic():
        verdicts = _apply(advice, ids, now, report)
        verdicts += _device_verdicts(fleet, rules, now)
        report.device_alerts = sum(1 for v in verdicts if v.kind == "device_health" and v.verdict)
        if verdicts:
            _transitions, report.notifications, _queries = alerts.apply_verdicts(verdicts, now=now)
    return report


def _pool_of(rec: CapacityRecommendation, name: str) -> PoolKey:
    return PoolKey(name, rec.tier, rec.region, rec.pool)


def _alert_key(key: PoolKey, action: str) -> str:
    return f"svc:{key.service}:capacity:{key.label}:{action}"[:200]


def _apply(
    advice: dict[PoolKey, Advice], ids: dict[str, int], now: datetime, report: EvaluationReport
) -> list[alerts.Verdict]:
    names = {v: k for k, v in ids.items()}
    clear_after = timedelta(seconds=settings.CAPACITY_CLEAR_AFTER_S)
    active = list(
        CapacityRecommendation.objects.select_for_update().filter(
            state=ACTIVE, service_id__in=list(ids.values())
        )
    )
    open_by = {(_pool_of(r, names[r.service_id]), r.action): r for r in active}
    verdicts: list[alerts.Verdict] = []
    touched: list[CapacityRecommendation] = []
    clears: list[dict[str, Any]] = []
    for rec in active:
        key = _pool_of(rec, names[rec.service_id])
        if key not in advice:
            continue  # no telemetry this time: leave it as it is
        now_advice = advice[key]
        if now_advice.action == rec.action:
            rec.amount, rec.current_workers = now_advice.amount, now_advice.current_workers
            rec.desired_workers, rec.reason = now_advice.desired_workers, now_advice.reason[:500]
            rec.evidence, rec.last_seen_at, rec.calm_since = now_advice.evidence, now, None
            rec.evaluations += 1
            report.confirmed += 1
            touched.append(rec)
            continue
        if rec.calm_since is None:
            rec.calm_since = now
        if now - rec.calm_since >= clear_after:
            rec.state, rec.cleared_at = CLEARED, now
            rec.clear_reason = (
                f"calm since {rec.calm_since.isoformat()} ({(now - rec.calm_since).total_seconds():g} s): "
                f"{now_advice.reason}"
            )[:500]
            report.cleared.append(rec.pk)
            clears.append(
                {
                    "obj": rec,
                    "before": {"state": ACTIVE},
                    "after": {"state": CLEARED, "clear_reason": rec.clear_reason},
                }
            )
            verdicts.append(_verdict(key, rec.action, ids, False, {"recommendation": rec.pk}))
        touched.append(rec)
    if touched:
        _save(touched)
    audit_record_many(actor=ACTOR, action="capacity_clear", entries=clears)
    new = [
        CapacityRecommendation(
            service_id=ids[key.service],
            tier=key.tier,
            region=key.region,
            pool=key.pool,
            action=a.action,
            amount=a.amount,
            current_workers=a.current_workers,
            desired_workers=a.desired_workers,
            reason=a.reason[:500],
            evidence=a.evidence,
            opening_evidence=a.evidence,
            opened_at=now,
            last_seen_at=now,
        )
        for key, a in advice.items()
        if a.action != HOLD and (key, a.action) not in open_by
    ]
    if new:
        CapacityRecommendation.objects.bulk_create(new, batch_size=1000)
        for rec in new:
            key = _pool_of(rec, names[rec.service_id])
            report.opened.append(rec.pk)
            verdicts.append(
                _verdict(
                    key,
                    rec.action,
                    ids,
                    True,
                    {"recommendation": rec.pk, "amount": rec.amount, "reason": rec.reason},
                )
            )
        audit_record_many(
            actor=ACTOR,
            action="capacity_recommend",
            entries=[
                {
                    "obj": rec,
                    "after": {
                        "action": rec.action,
                        "amount": rec.amount,
                        "reason": rec.reason,
                        "pool": rec.pool_label,
                    },
                }
                for rec in new
            ],
        )
    return verdicts


_SAVED = (
    "amount",
    "current_workers",
    "desired_workers",
    "reason",
    "evidence",
    "last_seen_at",
    "calm_since",
    "evaluations",
    "state",
    "cleared_at",
    "clear_reason",
)
_UPDATE_SQL = """
UPDATE routing_capacityrecommendation r SET
    amount = v.amount, current_workers = v.current_workers, desired_workers = v.desired_workers,
    reason = v.reason, evidence = v.evidence::jsonb, last_seen_at = v.last_seen_at,
    calm_since = v.calm_since, evaluations = v.evaluations, state = v.state, cleared_at = v.cleared_at,
    clear_reason = v.clear_reason
FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::int[], %s::text[], %s::text[], %s::timestamptz[],
            %s::timestamptz[], %s::int[], %s::text[], %s::timestamptz[], %s::text[])
     AS v(id, amount, current_workers, desired_workers, reason, evidence, last_seen_at, calm_since,
          evaluations, state, cleared_at, clear_reason)
WHERE r.id = v.id
"""


def _save(rows: list[CapacityRecommendation]) -> None:
    """One UPDATE for every changed row (bulk_update's CASE expressions are slow at 10,000 rows)."""
    if connection.vendor != "postgresql":
        CapacityRecommendation.objects.bulk_update(rows, list(_SAVED), batch_size=500)
        return
    columns = [[r.pk for r in rows]] + [
        [json.dumps(getattr(r, name)) if name == "evidence" else getattr(r, name) for r in rows]
        for name in _SAVED
    ]
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE_SQL, columns)


def _verdict(key: PoolKey, action: str, ids: dict[str, int], firing: bool, evidence: dict) -> alerts.Verdict:
    return alerts.Verdict(
        key=_alert_key(key, action),
        service=(ids[key.service], key.service),
        slo_id=None,
        kind="capacity",
        severity="ticket",
        verdict=firing,
        evidence={"pool": key.label, "action": action, **evidence},
    )


def _device_verdicts(fleet: Any, rules: dict[PoolKey, Autoscaling], now: datetime) -> list[alerts.Verdict]:
    """Per gateway: fire when its newest window is hot or short of memory; resolve when none of
    its windows in the last CAPACITY_CLEAR_AFTER_S was; otherwise no verdict (no flapping)."""
    from routing.models.fleet import Gateway

    names = dict(Gateway.objects.filter(pk__in=list(fleet.gateway_pool)).values_list("pk", "name"))
    out: list[alerts.Verdict] = []
    for pool in fleet.pools:
        pool_rules = rules.get(pool.key, DEFAULT_RULES)
        for gateway_id, latest in pool.latest_by_gateway.items():
            reason = device_stress_reason(pool_rules, latest)
            if reason is not None:
                verdict: bool | None = True
            else:
                # the pool's windows bound each gateway's: calm pool windows mean a calm gateway
                calm_since = now.timestamp() - settings.CAPACITY_CLEAR_AFTER_S
                recent = [
                    w
                    for start, w in zip(pool.window_starts, pool.windows, strict=True)
                    if start + w.duration_s > calm_since
                ]
                verdict = False if all(device_stress_reason(pool_rules, w) is None for w in recent) else None
            out.append(
                alerts.Verdict(
                    key=f"svc:{pool.key.service}:device_health:{names.get(gateway_id, gateway_id)}"[:200],
                    service=(fleet.service_ids[pool.key.service], pool.key.service),
                    slo_id=None,
                    kind="device_health",
                    severity="ticket",
                    verdict=verdict,
                    evidence={
                        "gateway": gateway_id,
                        "reason": reason or "within thresholds",
                        "temperature_c": latest.temperature_c,
                        "memory_headroom_pct": latest.memory_headroom_pct,
                        "max_temperature_c": pool_rules.edge.max_temperature_c,
                        "min_memory_headroom_pct": pool_rules.edge.min_memory_headroom_pct,
                    },
                )
            )
    return out
