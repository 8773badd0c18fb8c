"""The gateway runtime: the active config, signed pushes, polling, heartbeats, traffic, telemetry.

The telemetry, context and decision pushes live in gateway.reporting (a mixin of Gateway).

The active config is one immutable object swapped under a lock, so traffic threads always see a
whole bundle (never a policy from one revision with the cache config of another). A bundle is
applied all-or-nothing: every check passes, then it is compiled, swapped in and persisted as the
last-known-good; any failure leaves the previous config running and becomes a NACK.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from controlplane.lib.signing import TOLERANCE_S, SignatureError, verify
from gateway.config import GatewayConfig
from gateway.health import device_health as simulated_health
from gateway.health import overloaded
from gateway.llm import ClassDraw, LlmModel, record_answer
from gateway.metrics import GatewayMetrics
from gateway.reporting import (  # noqa: F401 - re-exported: the limits were defined here
    CONTEXT_BATCH_MINUTES,
    MAX_PENDING_DECISIONS,
    MAX_PENDING_MINUTES,
    ReportingMixin,
)
from gateway.state import load_state, save_state
from gateway.traffic import (
    LAYER_LABEL,
    CacheModel,
    ContextReservoir,
    Outcome,
    TrafficModel,
    cache_model,
    summarize,
)
from routing.fleet.bundle import bundle_etag, bundle_problems, errors_only
from routing.policy import CacheConfig, CompiledPolicy, compile_policy, default_cache_config, default_policy
from routing.policy.schema import FAILED
from slo import contract as c
from slo.telemetry.batch_format import le_label

logger = logging.getLogger("gateway")

MAX_CONFIG_BYTES = 1024 * 1024
# request contexts sampled per minute for the control plane's simulation (minutes per push, and
# minutes/records kept while unreachable: gateway.reporting)
CONTEXTS_PER_MINUTE = 30


@dataclass(frozen=True)
class ActiveConfig:
    revision: int | None  # None: the built-in bootstrap config, before any bundle
    bundle: dict[str, Any]
    compiled: CompiledPolicy
    cache: CacheModel
    source: str  # bootstrap | last_known_good | push | poll
    applied_at: float


class Gateway(ReportingMixin):
    def __init__(self, config: GatewayConfig, *, now: float | None = None) -> None:
        self.config = config
        self.metrics = GatewayMetrics(classes=bool(config.classes), llm=bool(config.llm_provider))
        self._class_draw = ClassDraw(config.classes, config.seed + 31) if config.classes else None
        self._llm = LlmModel(config.seed + 37) if config.llm_provider else None
        self._lock = threading.Lock()
        self._seen_signatures: dict[str, int] = {}
        self.rejected: dict[str, Any] | None = None  # {"revision", "error"} of the last NACK
        self.traffic = TrafficModel(config.routes, seed=config.seed)
        self._contexts_rng_seed = config.seed
        self._outcomes_window: list[Outcome] = []
        self._minutes: dict[int, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        self._minute_gauges: dict[int, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        self._context_samples: dict[int, ContextReservoir] = {}
        self._context_minute: int | None = None  # the minute traffic last ticked in (still filling)
        self._context_rng = random.Random(config.seed + 7919)
        self._decisions = ContextReservoir(config.decision_sample, random.Random(config.seed + 104729))
        self._decisions_pending: list[dict[str, Any]] = []
        self._ticks = 0
        self._last_sent_at_us = 0
        self.poll_results: Counter[str] = Counter()
        self.stop = threading.Event()
        self.session = requests.Session()
        self.active = self._bootstrap(now or time.time())
        self._load_last_known_good()
        self._init_series()

    # -- config -------------------------------------------------------------------------------
    def _bootstrap(self, now: float) -> ActiveConfig:
        cfg = self.config
        policy = default_policy(cfg.service, cfg.service_class, cfg.latency_slo_ms)
        cache = default_cache_config(cfg.service)
        bundle = {
            "revision": 0,
            "service": cfg.service,
            "routing_policy": policy,
            "cache_config": cache,
            "model_version": None,
        }
        return self._compile(bundle, revision=None, source="bootstrap", now=now)

    def _compile(
        self, bundle: dict[str, Any], *, revision: int | None, source: str, now: float
    ) -> ActiveConfig:
        compiled = compile_policy(bundle["routing_policy"], service_class=self.config.service_class)
        cache = cache_model(CacheConfig.model_validate(bundle["cache_config"]), self.config.cache_hit_ratio)
        return ActiveConfig(revision, bundle, compiled, cache, source, now)

    def _load_last_known_good(self) -> None:
        state = load_state(self.config.state_dir)
        if not state:
            return
        self.rejected = state.get("rejected")
        bundle = state.get("bundle")
        if not isinstance(bundle, dict) or self.check_bundle(bundle):
            logger.warning(
                "last-known-good config in %s is unusable; starting from bootstrap", self.config.state_dir
            )
            return
        self.active = self._compile(
            bundle, revision=bundle["revision"], source="last_known_good", now=time.time()
        )
        logger.info("started from last-known-good revision %s", bundle["revision"])

    def check_bundle(self, bundle: Any) -> list[str]:
        """Errors that block applying this bundle (warnings do not)."""
        # No latency SLO here: whether a chain fits the SLO is the release gate's call. A gateway
        # refuses what it cannot run, not what it would run badly (a bad policy must be able to
        # burn budget visibly, so the control plane can roll it back).
        problems = errors_only(
            bundle_problems(
                bundle,
                latency_slo_ms=None,
                service_class=self.config.service_class,
                expected_service=self.config.service,
            )
        )
        messages = [f"{p.path}: {p.message}" if p.path else p.message for p in problems]
        if not messages:
            # this gateway's own check: every route the policy can use needs a backend here
            try:
                compiled = compile_policy(bundle["routing_policy"], service_class=self.config.service_class)
            except ValueError as exc:
                return [f"routing_policy: {exc}"]
            missing = sorted(compiled.routes - {FAILED} - set(self.config.routes))
            if missing:
                messages.append(
                    f"routing_policy: this gateway has no backend for route(s) {', '.join(missing)}"
                )
        return messages

    def apply(self, bundle: dict[str, Any], *, source: str) -> tuple[bool, str]:
        """All-or-nothing. Returns (applied, error)."""
        errors = self.check_bundle(bundle)
        if errors:
            error = "; ".join(errors)[:2000]
            with self._lock:
                self.rejected = {"revision": bundle.get("revision"), "error": error}
                self._persist()
            logger.warning("rejected revision %s: %s", bundle.get("revision"), error)
            return False, error
        try:
            active = self._compile(bundle, revision=bundle["revision"], source=source, now=time.time())
        except Exception as exc:  # noqa: BLE001 - anything the validators missed is still a NACK
            return False, f"compile failed: {exc.__class__.__name__}: {exc}"[:2000]
        with self._lock:
            self.active = active
            if self.rejected and (self.rejected.get("revision") or 0) <= bundle["revision"]:
                self.rejected = None
            self._persist()
        self._publish_revision()
        logger.info("applied revision %s from %s", bundle["revision"], source)
        return True, ""

    def _persist(self) -> None:
        if self.active.revision is None and self.rejected is None:
            return
        state: dict[str, Any] = {"rejected": self.rejected}
        if self.active.revision is not None:
            state["bundle"] = self.active.bundle
        save_state(self.config.state_dir, state)

    # -- signed pushes ------------------------------------------------------------------------
    def handle_push(
        self, body: bytes, signature: str | None, *, now: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) for POST /config."""
        now = time.time() if now is None else now
        secret = self.config.signing_secret
        if not secret:
            return 403, {"status": "rejected", "error": "this gateway takes no pushes (no signing secret)"}
        try:
            # During a secret rotation the control plane signs under the new and the old secret
            # (two v1 entries); verify accepts the push when any of them matches ours.
            timestamp, used = verify(secret, body, signature or "", now=now)
        except SignatureError as exc:
            return 401, {"status": "rejected", "error": f"bad signature: {exc}"}
        with self._lock:
            # a captured request replayed within the tolerance window is refused
            for seen, at in list(self._seen_signatures.items()):
                if now - at > TOLERANCE_S:
                    del self._seen_signatures[seen]
            if used in self._seen_signatures:
                return 409, {"status": "replay", "error": "this signed push was already received"}
            self._seen_signatures[used] = timestamp
            applied = self.active.revision
        try:
            bundle = json.loads(body)
        except ValueError:
            return 422, {"status": "nack", "revision": None, "error": "body is not JSON"}
        revision = bundle.get("revision") if isinstance(bundle, dict) else None
        if not isinstance(revision, int) or isinstance(revision, bool):
            return 422, {"status": "nack", "revision": None, "error": "revision: must be an integer"}
        if applied is not None and revision < applied:
            # revisions only grow (a rollback is a new revision): an older one is a replay or a race
            return 409, {"status": "stale", "applied_revision": applied}
        if applied is not None and revision == applied:
            return 200, {"status": "ack", "applied_revision": applied}
        ok, error = self.apply(bundle, source="push")
        if not ok:
            return 422, {"status": "nack", "revision": revision, "error": error}
        return 200, {"status": "ack", "applied_revision": revision}

    # -- control plane client -----------------------------------------------------------------
    def _url(self, suffix: str) -> str:
        return (
            f"{self.config.control_plane_url.rstrip('/')}/api/v1/gateways/{self.config.gateway_id}/{suffix}"
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.token}"}

    def poll_once(self) -> str:
        """GET the desired bundle with If-None-Match; returns what happened (counted in /status)."""
        result = self._poll()
        with self._lock:
            self.poll_results[result] += 1
        return result

    def _poll(self) -> str:
        tags = []
        if self.active.revision is not None:
            tags.append(bundle_etag(self.active.revision))
        if self.rejected and isinstance(self.rejected.get("revision"), int):
            tags.append(bundle_etag(self.rejected["revision"]))  # do not download a rejected revision again
        headers = self._headers()
        if tags:
            headers["If-None-Match"] = ", ".join(tags)
        try:
            response = self.session.get(self._url("config"), headers=headers, timeout=(2, 5))
        except requests.RequestException as exc:
            logger.info(
                "config poll failed (%s); keeping revision %s", exc.__class__.__name__, self.active.revision
            )
            return "unreachable"
        if response.status_code == 304:
            return "not_modified"
        if response.status_code == 404:
            return "no_desired"
        if response.status_code != 200:
            logger.warning("config poll answered HTTP %s", response.status_code)
            return f"http_{response.status_code}"
        try:
            bundle = response.json()
        except ValueError:
            return "bad_json"
        revision = bundle.get("revision") if isinstance(bundle, dict) else None
        if (
            self.active.revision is not None
            and isinstance(revision, int)
            and revision <= self.active.revision
        ):
            return "not_newer"
        ok, _error = self.apply(bundle, source="poll")
        return "applied" if ok else "rejected"

    def heartbeat_once(self) -> dict[str, Any] | None:
        body = {
            "applied_revision": self.active.revision,
            "config_etag": bundle_etag(self.active.revision) if self.active.revision is not None else "",
            "health": self.device_health(),
        }
        if self.rejected:
            body["nack"] = self.rejected
        try:
            response = self.session.post(
                self._url("heartbeat/"), json=body, headers=self._headers(), timeout=(2, 5)
            )
        except requests.RequestException as exc:
            logger.info("heartbeat failed (%s)", exc.__class__.__name__)
            return None
        if response.status_code != 200:
            logger.warning("heartbeat answered HTTP %s", response.status_code)
            return None
        answer = response.json()
        desired = answer.get("desired_revision") if isinstance(answer, dict) else None
        known = {self.active.revision, (self.rejected or {}).get("revision")}
        if isinstance(desired, int) and desired not in known:
            self.poll_once()  # the control plane wants something else: fetch it now
        return answer

    def device_health(self) -> dict[str, Any]:
        """What the device reports (gateway.health): simulated, or overloaded on request."""
        with self._lock:
            recent = [o.elapsed_ms for o in self._outcomes_window[-500:] if o.outcome != "shed"]
        return simulated_health(
            ticks=self._ticks,
            tier=self.config.tier,
            overload=overloaded(self.config.overload, self.config.state_dir),
            latencies=recent,
        )

    # -- traffic ------------------------------------------------------------------------------
    def _init_series(self) -> None:
        m, cfg = self.metrics, self.config
        for cls in sorted(cfg.classes) or [None]:
            where = {"service": cfg.service, "tier": cfg.tier, **({c.CLASS_LABEL: cls} if cls else {})}
            for route in c.ROUTES:
                for outcome in c.OUTCOMES:
                    m.requests.labels(**where, route=route, outcome=outcome)
            for layer in c.CACHE_LAYERS:
                for result in c.CACHE_RESULTS:
                    m.cache_lookups.labels(**where, layer=layer, result=result)
        self._publish_revision()

    def _publish_revision(self) -> None:
        name = self.config.name
        revision = self.active.revision or 0
        self.metrics.config_revision_info.clear()
        for kind in ("routing_policy", "cache_config"):
            self.metrics.config_revision.labels(name, kind).set(revision)
            self.metrics.config_revision_info.labels(
                name, kind, f"{self.config.service}-{kind}", str(revision)
            ).set(1)

    def tick(self, *, now: float | None = None, requests_count: int | None = None) -> list[Outcome]:
        """Simulate one tick of traffic (rps * tick_s requests) and record it."""
        from routing.policy import generate_contexts

        now = time.time() if now is None else now
        cfg = self.config
        count = requests_count if requests_count is not None else int(round(cfg.rps * cfg.tick_s))
        self._ticks += 1
        health = self.device_health()
        active = self.active  # one consistent snapshot for the whole tick
        contexts = generate_contexts(cfg.context, count, seed=self._contexts_rng_seed + self._ticks)
        outcomes = []
        decided = []
        minute = int(now // 60) * 60
        counters = self._minutes.setdefault(minute, defaultdict(float))
        for context in contexts:
            service_class = self._class_draw() if self._class_draw else None
            context = {
                **context,
                "service_class": service_class or cfg.service_class,
                "region": cfg.region or None,
                "temperature_c": health["temperature_c"],
                "memory_headroom_pct": health["memory_headroom_pct"],
                "queue_depth": health["queue_depth"],
                "active_workers": health["active_workers"],
            }
            outcome = self.traffic.play(active.compiled, active.cache, context)
            self._record(outcome, counters, service_class)
            outcomes.append(outcome)
            decided.append(context)
        records = self._decision_records(active, outcomes, now) if cfg.decision_sample else []
        self._record_gauges(health, minute, contexts)
        with self._lock:
            self._outcomes_window = (self._outcomes_window + outcomes)[-5000:]
            for old in [m for m in self._minutes if m < minute - MAX_PENDING_MINUTES * 60]:
                self._minutes.pop(old, None)
                self._minute_gauges.pop(old, None)
            reservoir = self._context_samples.get(minute)
            if reservoir is None:
                reservoir = self._context_samples[minute] = ContextReservoir(
                    CONTEXTS_PER_MINUTE, self._context_rng
                )
            for context in decided:
                reservoir.add(context)
            for record in records:
                self._decisions.add(record)
            self._context_minute = minute
            for old in [m for m in self._context_samples if m < minute - MAX_PENDING_MINUTES * 60]:
                self._context_samples.pop(old, None)
        return outcomes

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

    def status(self) -> dict[str, Any]:
        with self._lock:
            window = list(self._outcomes_window)
            active, rejected = self.active, self.rejected
        return {
            "name": self.config.name,
            "service": self.config.service,
            "applied_revision": active.revision,
            "source": active.source,
            "rejected": rejected,
            "polls": dict(self.poll_results),
            "routing_policy_description": active.bundle["routing_policy"].get("description", ""),
            "traffic": summarize(window, latency_threshold_ms=self.config.latency_slo_ms),
        }

    # -- loops --------------------------------------------------------------------------------
    def _every(self, interval_s: float, work: Any, name: str) -> threading.Thread | None:
        if interval_s <= 0:
            return None

        def loop() -> None:
            while not self.stop.is_set():
                try:
                    work()
                except Exception:  # noqa: BLE001 - a loop must survive one bad round
                    logger.exception("%s failed", name)
                self.stop.wait(interval_s)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        return thread

    def start_loops(self) -> None:
        cfg = self.config
        self._every(cfg.tick_s, self.tick, "traffic")
        if cfg.control_plane_url:
            self._every(cfg.poll_interval_s, self.poll_once, "poll")
            self._every(cfg.heartbeat_interval_s, self.heartbeat_once, "heartbeat")
            if cfg.push_telemetry:
                self._every(cfg.telemetry_interval_s, self.push_telemetry_once, "telemetry")
                self._every(cfg.telemetry_interval_s, self.push_contexts_once, "contexts")
                if cfg.decision_sample:
                    self._every(cfg.telemetry_interval_s, self.push_decisions_once, "decisions")
