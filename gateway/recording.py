"""How the gateway records what it served: prometheus metrics, the per-minute counters and gauges
it pushes, and decision records. A mixin of `gateway.app.Gateway` (its state, no state of its own)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.llm import record_answer
from gateway.traffic import LAYER_LABEL, Outcome
from slo import contract as c
from slo.telemetry.batch_format import le_label

if TYPE_CHECKING:
    from gateway.app import ActiveConfig
    from gateway.config import GatewayConfig
    from gateway.llm import LlmModel
    from gateway.metrics import GatewayMetrics


class RecordingMixin:
    config: GatewayConfig
    metrics: GatewayMetrics
    active: ActiveConfig
    _llm: LlmModel | None
    _minute_gauges: dict[int, dict[tuple[str, tuple[tuple[str, str], ...]], float]]

    def _decision_records(
        self, active: ActiveConfig, outcomes: list[Outcome], now: float
    ) -> list[dict[str, Any]]:
        """One decision record per request (the reservoir keeps a sample): what the policy did."""
        key_fields = {
            LAYER_LABEL.get(layer.get("kind"), "result"): layer.get("key", [])
            for layer in (active.bundle.get("cache_config") or {}).get("layers", [])
        }
        at = datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="milliseconds")
        model_version = active.bundle.get("model_version")
        return [
            {
                "request_id": uuid.uuid4().hex[:20],
                "at": at,
                "rule": o.rule,
                "admission": o.admission,
                "chain": list(o.chain) or [o.route],
                "route": o.route,
                "cache": [
                    {"layer": layer, "result": result, "key": key_fields.get(layer, [])}
                    for layer, result in o.cache
                ],
                "model_version": model_version,
                "revision": active.revision,
                "outcome": o.outcome,
                "latency_ms": round(o.elapsed_ms, 3),
            }
            for o in outcomes
        ]

    def _record(self, o: Outcome, counters: dict, service_class: str | None = None) -> None:
        m, s, t = self.metrics, self.config.service, self.config.tier
        base: tuple[tuple[str, str], ...] = (("service", s), ("tier", t))
        k: dict[str, str] = {}
        if service_class:
            base += ((c.CLASS_LABEL, service_class),)
            k = {c.CLASS_LABEL: service_class}
        m.requests.labels(s, t, o.route, o.outcome, *k.values()).inc()
        counters[(c.REQUESTS_TOTAL, base + (("route", o.route), ("outcome", o.outcome)))] += 1
        if o.outcome != "shed":
            seconds = o.elapsed_ms / 1000
            m.duration.labels(s, t, o.route, o.outcome, *k.values()).observe(seconds)
            labels = base + (("route", o.route), ("outcome", o.outcome))
            counters[(f"{c.REQUEST_DURATION}_count", labels)] += 1
            counters[(f"{c.REQUEST_DURATION}_sum", labels)] += seconds
            for le in (*c.LATENCY_BUCKETS_S, math.inf):
                if seconds <= le:
                    counters[(f"{c.REQUEST_DURATION}_bucket", labels + (("le", le_label(float(le))),))] += 1
        if o.outcome == "ok" and o.stages:
            for stage, ms in o.stages.items():
                seconds = ms / 1000
                m.stage_duration.labels(s, t, stage, *k.values()).observe(seconds)
                labels = base + (("stage", stage),)
                counters[(f"{c.STAGE_DURATION}_count", labels)] += 1
                counters[(f"{c.STAGE_DURATION}_sum", labels)] += seconds
                for le in (*c.STAGE_BUCKETS_S, math.inf):
                    if seconds <= le:
                        counters[(f"{c.STAGE_DURATION}_bucket", labels + (("le", le_label(float(le))),))] += 1
        if o.outcome == "ok":
            m.data_age.labels(s, t, o.route, *k.values()).observe(o.data_age_s)
            labels = base + (("route", o.route),)
            counters[(f"{c.ANSWER_DATA_AGE}_count", labels)] += 1
            counters[(f"{c.ANSWER_DATA_AGE}_sum", labels)] += o.data_age_s
            for le in (*c.DATA_AGE_BUCKETS_S, math.inf):
                if o.data_age_s <= le:
                    counters[(f"{c.ANSWER_DATA_AGE}_bucket", labels + (("le", le_label(float(le))),))] += 1
        for from_route, to_route, outcome in o.fallbacks:
            fallback_outcome = outcome if outcome in c.FALLBACK_OUTCOMES else "error"
            m.fallbacks.labels(s, t, from_route, to_route, fallback_outcome, *k.values()).inc()
            counters[
                (
                    c.FALLBACKS_TOTAL,
                    base
                    + (("from_route", from_route), ("to_route", to_route), ("outcome", fallback_outcome)),
                )
            ] += 1
        for layer, result in o.cache:
            m.cache_lookups.labels(s, t, layer, result, *k.values()).inc()
            counters[(c.CACHE_LOOKUPS_TOTAL, base + (("layer", layer), ("result", result)))] += 1
        for accelerator, seconds in o.compute_s.items():
            m.compute_seconds.labels(s, t, accelerator, *k.values()).inc(seconds)
            counters[(c.COMPUTE_SECONDS_TOTAL, base + (("accelerator", accelerator),))] += seconds
        if o.egress_bytes:
            m.egress_bytes.labels(s, t, o.route, *k.values()).inc(o.egress_bytes)
            counters[(c.EGRESS_BYTES_TOTAL, base + (("route", o.route),))] += o.egress_bytes
        if self._llm is not None:
            answer = self._llm.answer(o.route, o.outcome, o.elapsed_ms)
            if answer is not None:
                cfg = self.config
                for family, labels, value in record_answer(
                    counters, base, o.route, o.outcome, answer, cfg.llm_provider, cfg.llm_model
                ):
                    metric = {c.TIME_TO_FIRST_TOKEN: m.ttft, c.TIME_PER_OUTPUT_TOKEN: m.tpot}.get(family)
                    if metric is not None:
                        metric.labels(**dict(labels)).observe(value)
                    else:
                        m.tokens.labels(**dict(labels)).inc(value)

    def _record_gauges(self, health: dict[str, Any], minute: int, contexts: list[dict[str, Any]]) -> None:
        m, s, t, name = self.metrics, self.config.service, self.config.tier, self.config.name
        model_version = str(self.active.bundle.get("model_version") or "unknown")
        confidence = sum(ctx.get("confidence", 0) for ctx in contexts) / len(contexts) if contexts else 0.0
        m.queue_depth.labels(s, t).set(health["queue_depth"])
        m.active_workers.labels(s, t).set(health["active_workers"])
        m.confidence.labels(s, t, model_version).set(confidence)
        m.temperature.labels(t, name).set(health["temperature_c"])
        m.memory_headroom.labels(t, name).set(health["memory_headroom_pct"] * 40_000_000)  # of a 4 GB device
        m.backhaul_rtt.labels(t, "cloud").set(0.035)
        gauges = self._minute_gauges.setdefault(minute, {})
        base = (("service", s), ("tier", t))
        gauges[(c.QUEUE_DEPTH, base)] = health["queue_depth"]
        gauges[(c.ACTIVE_WORKERS, base)] = health["active_workers"]
