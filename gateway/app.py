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
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import requests

from controlplane.lib.signing import TOLERANCE_S, SignatureError, verify
from gateway.batching import LocalQueue, Slot
from gateway.collapse import Collapser
from gateway.config import GatewayConfig
from gateway.health import device_health as simulated_health
from gateway.health import overloaded
from gateway.llm import ClassDraw, LlmModel
from gateway.load import LoadMeter
from gateway.metrics import GatewayMetrics
from gateway.recording import RecordingMixin
from gateway.regions import RegionProber
from gateway.reporting import (  # noqa: F401 - re-exported: the limits were defined here
    CONTEXT_BATCH_MINUTES,
    MAX_PENDING_DECISIONS,
    MAX_PENDING_MINUTES,
    ReportingMixin,
    aligned_delay,
    telemetry_offset_s,
)
from gateway.state import load_state, save_state
from gateway.traffic import (
    CacheModel,
    ContextReservoir,
    Outcome,
    TrafficModel,
    cache_model,
    stage_report,
    summarize,
)
from routing.fleet.bundle import bundle_etag, bundle_problems, errors_only
from routing.policy import CacheConfig, CompiledPolicy, compile_policy, default_cache_config, default_policy
from routing.policy.schema import FAILED
from slo import contract as c

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


class Gateway(ReportingMixin, RecordingMixin):
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
        self.load = LoadMeter(config.capacity_rps)
        self._local_queue: LocalQueue | None = None
        self._batch_sizes: list[int] = []
        self._load_snapshot: dict[str, Any] = {}
        self._collapser = Collapser(config.distinct_requests, config.seed + 53)
        self._prober = RegionProber(config.state_dir, config.region, config.seed + 59)
        self._region_hops: Counter[str] = Counter()
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
        from routing.policy import decide, generate_contexts

        now = time.time() if now is None else now
        cfg = self.config
        count = requests_count if requests_count is not None else int(round(cfg.rps * cfg.tick_s))
        self._ticks += 1
        health = self.device_health()
        active = self.active  # one consistent snapshot for the whole tick
        contexts = generate_contexts(cfg.context, count, seed=self._contexts_rng_seed + self._ticks)
        overload = overloaded(cfg.overload, cfg.state_dir)
        spacing = cfg.tick_s / count if count else 0.0
        queue = self._local_queue_for(active)
        age = queue.oldest_wait_ms if queue is not None else 0.0
        regions = active.compiled.policy.regions
        probed = self._prober.probe(now, regions.candidates) if regions is not None else {}
        self.traffic.down_regions = frozenset(
            c.name for c in (regions.candidates if regions else ()) if self._prober.down(c.name)
        )
        outcomes = []
        decided = []
        decisions = []
        minute = int(now // 60) * 60
        counters = self._minutes.setdefault(minute, defaultdict(float))
        classes = []
        for index, context in enumerate(contexts):
            at = now + index * spacing
            service_class = self._class_draw() if self._class_draw else None
            context = {
                **context,
                "service_class": service_class or cfg.service_class,
                "region": cfg.region or None,
                "temperature_c": health["temperature_c"],
                "memory_headroom_pct": health["memory_headroom_pct"],
                "queue_depth": health["queue_depth"],
                "active_workers": health["active_workers"],
                **self.load.arrive(at, overloaded=overload, request_age_ms=age),
                **probed,
            }
            decision = decide(active.compiled, context)
            self.load.settle(at, decision.admission)
            for hop in decision.chain:
                if hop.region is not None:
                    self._region_hops[hop.region] += 1
            decisions.append(decision)
            decided.append(context)
            classes.append(service_class)
        slots = self._local_slots(queue, active, decisions, now, spacing)
        keys = [self._collapser.key() for _ in decisions]
        for index, (context, decision) in enumerate(zip(decided, decisions, strict=True)):
            at, key = now + index * spacing, keys[index]
            outcome = self._collapser.follow(key, at) if decision.collapse and decision.admitted else None
            if outcome is None:
                outcome = self.traffic.play_decided(decision, active.cache, context, slots.get(index))
                self._collapser.lead(key, at, outcome)
            self._record(outcome, counters, classes[index])
            outcomes.append(outcome)
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
            sizes = self._batch_sizes
            self._load_snapshot = {
                **self.load.last,
                "admissions": dict(self.load.admissions),
                "local_workers": len(queue.free_at) if queue is not None else None,
                "collapsed": self._collapser.collapsed,
                "regions": dict(self._prober.snapshot()),
                "region_hops": dict(self._region_hops),
                "mean_batch_size": round(sum(sizes) / len(sizes), 2) if sizes else None,
            }
            for old in [m for m in self._context_samples if m < minute - MAX_PENDING_MINUTES * 60]:
                self._context_samples.pop(old, None)
        return outcomes

    def _local_queue_for(self, active: ActiveConfig) -> LocalQueue | None:
        """The local model's queue: with finite workers, or with a batching window (then 64
        workers when `local_workers` is 0). None: every local request is served at once."""
        batching = active.compiled.policy.batching
        if not self.config.local_workers and batching is None:
            return None
        workers = self.config.local_workers or 64
        if self._local_queue is None or len(self._local_queue.free_at) != workers:
            self._local_queue = LocalQueue(workers)
        return self._local_queue

    def _local_slots(
        self, queue: LocalQueue | None, active: ActiveConfig, decisions: list[Any], now: float, spacing: float
    ) -> dict[int, Slot]:
        """Each request starting on the local model gets its queue wait and batch (gateway.batching)."""
        if queue is None:
            return {}
        first = [
            index
            for index, d in enumerate(decisions)
            if d.admitted and d.chain and d.chain[0].route == "local" and d.chain[0].timeout_ms
        ]
        batching = active.compiled.policy.batching
        slots = queue.run(
            [now + index * spacing for index in first],
            [float(decisions[index].chain[0].timeout_ms) for index in first],
            lambda: self.traffic.latency_ms("local"),
            max_batch_size=batching.max_batch_size if batching else 1,
            max_wait_ms=batching.max_wait_ms if batching else 0.0,
        )
        with self._lock:
            self._batch_sizes = (self._batch_sizes + queue.batches)[-1000:]
        return dict(zip(first, slots, strict=True))

    def status(self) -> dict[str, Any]:
        with self._lock:
            window = list(self._outcomes_window)
            active, rejected = self.active, self.rejected
            load = dict(self._load_snapshot)
        return {
            "name": self.config.name,
            "service": self.config.service,
            "applied_revision": active.revision,
            "source": active.source,
            "rejected": rejected,
            "polls": dict(self.poll_results),
            "routing_policy_description": active.bundle["routing_policy"].get("description", ""),
            "traffic": summarize(window, latency_threshold_ms=self.config.latency_slo_ms),
            "load": load,
            "stages": stage_report(window, self.config.stage_budget_ms),
        }

    # -- loops --------------------------------------------------------------------------------
    def _every(
        self, interval_s: float, work: Any, name: str, *, offset_s: float | None = None
    ) -> threading.Thread | None:
        """Run `work` every `interval_s` in a thread; with `offset_s`, at `offset_s` past each
        multiple of `interval_s` on the wall clock (see `aligned_delay`) instead of from now."""
        if interval_s <= 0:
            return None

        def loop() -> None:
            if offset_s is not None:
                self.stop.wait(aligned_delay(time.time(), interval_s, offset_s))
            while not self.stop.is_set():
                try:
                    work()
                except Exception:  # noqa: BLE001 - a loop must survive one bad round
                    logger.exception("%s failed", name)
                if offset_s is None:
                    self.stop.wait(interval_s)
                else:
                    self.stop.wait(aligned_delay(time.time(), interval_s, offset_s))

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
                self._every(
                    cfg.telemetry_interval_s,
                    self.push_telemetry_once,
                    "telemetry",
                    offset_s=telemetry_offset_s(cfg),
                )
                self._every(cfg.telemetry_interval_s, self.push_contexts_once, "contexts")
                if cfg.decision_sample:
                    self._every(cfg.telemetry_interval_s, self.push_decisions_once, "decisions")
