"""LiteLLM custom callback: each proxied request becomes our telemetry contract (docs/telemetry.md),
pushed per minute to POST /api/v1/gateways/<id>/telemetry/ with the gateway's token (Django-free).

Loaded by the proxy from the compiled config (`litellm_settings.callbacks:
[gateway.litellm_callback.handler]`, the repository on the proxy's PYTHONPATH; the agent sets it).
Configured by environment variables of the proxy process (the agent sets them):

    SLO_CONTROL_PLANE_URL, SLO_GATEWAY_ID, SLO_GATEWAY_TOKEN   where and as whom to push
    SLO_GATEWAY_NAME (default litellm-<id>), SLO_TELEMETRY_INTERVAL_S (default 10)

Per request, with the labels the compiled config put in each deployment's model_info (`slo_service`,
`slo_route`, `slo_tier`):

* answered (LiteLLM success event): `requests_total{route, outcome="ok"}` and the latency histogram;
  an answer served from LiteLLM's cache is `route="cache"` and a `cache_lookups_total` hit (layer
  `result`, or `semantic` with result `semantic_hit`), an answer from a model is a miss when the proxy
  has a cache;
* a deployment that failed (failure event) while the request went on to a fallback:
  `fallbacks_total{from_route, to_route="failed", outcome=error|timeout}`;
* a request the proxy failed after its last fallback (post-call failure hook): `requests_total{route=
  "failed", outcome=error|timeout}` with its latency;
* the tokens of an answer from a model (its response's `usage`: `prompt_tokens` input,
  `completion_tokens` output): `tokens_total{route, provider, model, direction}`, the provider
  and model being the deployment's (`custom_llm_provider`, the model it called); a cache hit bills
  none;
* a streamed answer from a model (`stream` with LiteLLM's `completion_start_time`): the time to
  its first token (`outcome="ok"`) and, with at least two output tokens, the time per output token
  after the first.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from slo import contract as c
from slo.telemetry.batch_format import MAX_FREE_LABEL_LEN, le_label

try:  # inside the LiteLLM proxy; elsewhere (our tests of the aggregation) a plain base class
    from litellm.integrations.custom_logger import CustomLogger
except ImportError:  # pragma: no cover - depends on where it is imported
    CustomLogger = object  # type: ignore[assignment,misc]

logger = logging.getLogger("gateway.litellm_callback")

MAX_PENDING_MINUTES = 180
Key = tuple[str, tuple[tuple[str, str], ...]]


def _timeout(exc: Any) -> bool:
    name = exc.__class__.__name__ if exc is not None else ""
    return "Timeout" in name or "timed out" in str(exc).lower()


def _seconds(start: Any, end: Any) -> float:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return max(0.0, (end - start).total_seconds())
    if isinstance(start, int | float) and isinstance(end, int | float):
        return max(0.0, float(end) - float(start))
    return 0.0


def _observe(
    counters: dict[Key, float], name: str, labels: tuple[tuple[str, str], ...], value: float, buckets: Any
) -> None:
    counters[(f"{name}_count", labels)] += 1
    counters[(f"{name}_sum", labels)] += value
    for le in (*buckets, math.inf):
        if value <= le:
            counters[(f"{name}_bucket", labels + (("le", le_label(float(le))),))] += 1


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _tokens(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _usage(response: Any, kwargs: dict[str, Any]) -> tuple[int, int]:
    """(input, output) tokens of an answer: its `usage`, else LiteLLM's standard logging payload."""
    usage = _field(response, "usage") if response is not None else None
    if usage is None:
        usage = kwargs.get("standard_logging_object") or {}
    return _tokens(_field(usage, "prompt_tokens")), _tokens(_field(usage, "completion_tokens"))


def _provider_model(kwargs: dict[str, Any]) -> tuple[str, str]:
    """Who bills the tokens and for which model: the deployment's provider and the model it called
    (`openai/gpt-4o-mini` -> `openai`, `gpt-4o-mini`), as free labels of the contract."""
    params = kwargs.get("litellm_params") or {}
    model = str(kwargs.get("model") or params.get("model") or "unknown")
    provider = str(kwargs.get("custom_llm_provider") or params.get("custom_llm_provider") or "")
    if "/" in model and (not provider or model.startswith(f"{provider}/")):
        prefix, model = model.split("/", 1)
        provider = provider or prefix
    return _free(provider), _free(model)


def _free(text: str) -> str:
    """A value for a free label: printable, no ',' or '=', at most MAX_FREE_LABEL_LEN characters."""
    clean = "".join(ch if ch.isprintable() and ch not in ",=" else "_" for ch in text)
    return clean[:MAX_FREE_LABEL_LEN] or "unknown"


class SloTelemetryCallback(CustomLogger):  # type: ignore[misc,valid-type]
    def __init__(self) -> None:
        if CustomLogger is not object:
            super().__init__()
        self.url = os.environ.get("SLO_CONTROL_PLANE_URL", "").rstrip("/")
        self.gateway_id = os.environ.get("SLO_GATEWAY_ID", "")
        self.token = os.environ.get("SLO_GATEWAY_TOKEN", "")
        self.name = os.environ.get("SLO_GATEWAY_NAME") or f"litellm-{self.gateway_id or 'unregistered'}"
        self.interval_s = float(os.environ.get("SLO_TELEMETRY_INTERVAL_S", "10"))
        self.minutes: dict[int, dict[Key, float]] = defaultdict(lambda: defaultdict(float))
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_sent_us = 0

    # the clock of the minutes (tests of a whole hour replace it with a faster one)
    def now(self) -> float:
        return time.time()

    # -- recording ---------------------------------------------------------------------------
    @staticmethod
    def _info(kwargs: dict[str, Any]) -> dict[str, Any]:
        params = kwargs.get("litellm_params") or {}
        info = params.get("model_info") or {}
        return info if isinstance(info, dict) else {}

    def _base(self, info: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        tier = str(info.get("slo_tier") or "private_cloud")
        return (
            ("service", str(info.get("slo_service") or "unknown")),
            ("tier", tier if tier in c.TIERS else "private_cloud"),
        )

    def record_request(
        self, *, base: tuple[tuple[str, str], ...], route: str, outcome: str, seconds: float | None
    ) -> None:
        minute = int(self.now() // 60) * 60
        labels = base + (("route", route), ("outcome", outcome))
        with self.lock:
            counters = self.minutes[minute]
            counters[(c.REQUESTS_TOTAL, labels)] += 1
            if seconds is not None:
                _observe(counters, c.REQUEST_DURATION, labels, seconds, c.LATENCY_BUCKETS_S)

    def record_llm(
        self,
        *,
        base: tuple[tuple[str, str], ...],
        route: str,
        provider: str,
        model: str,
        tokens: tuple[int, int],
        ttft_s: float | None,
        seconds: float,
    ) -> None:
        """Tokens of an answer from a model, and its token timings when it was streamed."""
        minute = int(self.now() // 60) * 60
        with self.lock:
            counters = self.minutes[minute]
            for direction, count in zip(c.TOKEN_DIRECTIONS, tokens, strict=True):
                if count > 0:
                    labels = base + (
                        ("route", route),
                        ("provider", provider),
                        ("model", model),
                        ("direction", direction),
                    )
                    counters[(c.TOKENS_TOTAL, labels)] += count
            if ttft_s is None:
                return
            labels = base + (("route", route), ("outcome", "ok"))
            _observe(counters, c.TIME_TO_FIRST_TOKEN, labels, ttft_s, c.TTFT_BUCKETS_S)
            if tokens[1] >= 2:
                tpot_s = max(0.0, seconds - ttft_s) / (tokens[1] - 1)
                _observe(
                    counters, c.TIME_PER_OUTPUT_TOKEN, base + (("route", route),), tpot_s, c.TPOT_BUCKETS_S
                )

    def _count(self, name: str, labels: tuple[tuple[str, str], ...]) -> None:
        minute = int(self.now() // 60) * 60
        with self.lock:
            self.minutes[minute][(name, labels)] += 1

    def _cache_on(self) -> bool:
        try:
            import litellm

            return litellm.cache is not None
        except ImportError:
            return False

    def on_success(self, kwargs: dict[str, Any], start: Any, end: Any, response: Any = None) -> None:
        info = self._info(kwargs)
        base = self._base(info)
        seconds = _seconds(start, end)
        if kwargs.get("cache_hit"):
            semantic = "semantic" in str(kwargs.get("cache_key") or "") or bool(
                (kwargs.get("litellm_params") or {}).get("metadata", {}).get("semantic-similarity")
            )
            layer, result = ("semantic", "semantic_hit") if semantic else ("result", "hit")
            self._count(c.CACHE_LOOKUPS_TOTAL, base + (("layer", layer), ("result", result)))
            self.record_request(base=base, route="cache", outcome="ok", seconds=seconds)
            return
        if self._cache_on():
            self._count(c.CACHE_LOOKUPS_TOTAL, base + (("layer", "result"), ("result", "miss")))
        route = str(info.get("slo_route") or "private_cloud")
        route = route if route in c.ROUTES else "private_cloud"
        self.record_request(base=base, route=route, outcome="ok", seconds=seconds)
        ttft_s = None
        if kwargs.get("stream") is True and kwargs.get("completion_start_time") is not None:
            ttft_s = min(_seconds(start, kwargs["completion_start_time"]), seconds)
        provider, model = _provider_model(kwargs)
        self.record_llm(
            base=base,
            route=route,
            provider=provider,
            model=model,
            tokens=_usage(response, kwargs),
            ttft_s=ttft_s,
            seconds=seconds,
        )

    def on_deployment_failure(self, kwargs: dict[str, Any]) -> None:
        info = self._info(kwargs)
        route = str(info.get("slo_route") or "")
        if route not in c.ROUTES:
            return
        outcome = "timeout" if _timeout(kwargs.get("exception")) else "error"
        labels = self._base(info) + (("from_route", route), ("to_route", "failed"), ("outcome", outcome))
        self._count(c.FALLBACKS_TOTAL, labels)

    def on_request_failure(self, request_data: dict[str, Any], exc: Any) -> None:
        metadata = request_data.get("metadata") or request_data.get("litellm_metadata") or {}
        info = metadata.get("model_info") if isinstance(metadata, dict) else None
        info = info if isinstance(info, dict) else {}
        if not info.get("slo_service"):
            info = {**info, "slo_service": str(request_data.get("model") or "unknown")}
        seconds = None
        started = metadata.get("slo_started_at") if isinstance(metadata, dict) else None
        if isinstance(started, float):  # set by async_pre_call_hook
            seconds = max(0.0, time.time() - started)
        self.record_request(
            base=self._base(info),
            route="failed",
            outcome="timeout" if _timeout(exc) else "error",
            seconds=seconds,
        )

    # -- LiteLLM's hooks ---------------------------------------------------------------------
    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any
    ) -> Any:
        self._ensure_pusher()
        metadata = data.setdefault("metadata", {})
        if isinstance(metadata, dict):
            metadata["slo_started_at"] = time.time()
        return data

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._ensure_pusher()
        try:
            self.on_success(kwargs, start_time, end_time, response_obj)
        except Exception:  # noqa: BLE001 - telemetry never breaks a request
            logger.exception("recording a success failed")

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._ensure_pusher()
        try:
            self.on_deployment_failure(kwargs)
        except Exception:  # noqa: BLE001
            logger.exception("recording a deployment failure failed")

    async def async_post_call_failure_hook(
        self,
        request_data: dict,
        original_exception: Exception,
        user_api_key_dict: Any,
        traceback_str: Any = None,
    ) -> None:
        self._ensure_pusher()
        try:
            self.on_request_failure(request_data, original_exception)
        except Exception:  # noqa: BLE001
            logger.exception("recording a request failure failed")
        return None

    # -- pushing -----------------------------------------------------------------------------
    def batch(self) -> tuple[list[int], dict[str, Any]]:
        """Completed minutes not yet accepted, oldest first, in the push format."""
        current = int(self.now() // 60) * 60
        with self.lock:
            minutes = sorted(m for m in self.minutes if m < current)[:MAX_PENDING_MINUTES]
            entries = [
                {
                    "minute": datetime.fromtimestamp(minute, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "counters": [
                        {
                            "name": name,
                            "labels": dict(labels),
                            "increase": int(value) if float(value).is_integer() else round(value, 6),
                        }
                        for (name, labels), value in sorted(self.minutes[minute].items())
                    ],
                    "gauges": [],
                }
                for minute in minutes
            ]
            stamp_us = max(time.time_ns() // 1000, self._last_sent_us + 1)
            self._last_sent_us = stamp_us
        sent_at = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=stamp_us)).isoformat()
        return minutes, {
            "contract_version": c.CONTRACT_VERSION,
            "gateway": self.name,
            "sent_at": sent_at,
            "minutes": entries,
        }

    def push_once(self) -> str:
        if not (self.url and self.gateway_id and self.token):
            return "not configured"
        minutes, batch = self.batch()
        if not minutes:
            return "nothing"
        request = urllib.request.Request(
            f"{self.url}/api/v1/gateways/{self.gateway_id}/telemetry/",
            data=json.dumps(batch).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - configured URL
                status = response.status
        except urllib.error.HTTPError as exc:
            logger.warning("telemetry push answered HTTP %s: %s", exc.code, exc.read()[:300])
            return f"http_{exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            logger.info("telemetry push failed (%s); %d minutes kept", exc.__class__.__name__, len(minutes))
            return "unreachable"
        if status in (200, 202):
            with self.lock:
                for minute in minutes:
                    self.minutes.pop(minute, None)
            return "accepted"
        return f"http_{status}"

    def _ensure_pusher(self) -> None:
        if self._thread is not None or not self.url:
            return
        with self.lock:
            if self._thread is not None:
                return

            def loop() -> None:
                while True:
                    time.sleep(self.interval_s)
                    try:
                        self.push_once()
                    except Exception:  # noqa: BLE001 - keep pushing
                        logger.exception("telemetry push crashed")

            self._thread = threading.Thread(target=loop, daemon=True, name="slo-telemetry")
            self._thread.start()


handler = SloTelemetryCallback()
