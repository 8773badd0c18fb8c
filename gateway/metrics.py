"""The telemetry contract (slo.contract) as prometheus-client metrics on a private registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from slo import contract as c


def _base(name: str) -> str:
    # prometheus-client appends _total to counters itself
    return name.removesuffix("_total")


class GatewayMetrics:
    """`classes`: series carry the optional `service_class` label; `llm`: the LLM families (time to
    first token, time per output token, tokens) are exposed too."""

    def __init__(self, *, classes: bool = False, llm: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        k = [c.CLASS_LABEL] if classes else []
        self.requests = Counter(
            _base(c.REQUESTS_TOTAL),
            "Inference requests by route and outcome",
            ["service", "tier", "route", "outcome", *k],
            registry=r,
        )
        self.fallbacks = Counter(
            _base(c.FALLBACKS_TOTAL),
            "Fallbacks from one route to the next",
            ["service", "tier", "from_route", "to_route", "outcome", *k],
            registry=r,
        )
        self.cache_lookups = Counter(
            _base(c.CACHE_LOOKUPS_TOTAL),
            "Cache lookups by layer and result",
            ["service", "tier", "layer", "result", *k],
            registry=r,
        )
        self.compute_seconds = Counter(
            _base(c.COMPUTE_SECONDS_TOTAL),
            "Compute seconds by accelerator",
            ["service", "tier", "accelerator", *k],
            registry=r,
        )
        self.egress_bytes = Counter(
            _base(c.EGRESS_BYTES_TOTAL),
            "Bytes sent off the device by route",
            ["service", "tier", "route", *k],
            registry=r,
        )
        self.duration = Histogram(
            c.REQUEST_DURATION,
            "End-to-end request duration",
            ["service", "tier", "route", "outcome", *k],
            buckets=c.LATENCY_BUCKETS_S,
            registry=r,
        )
        self.data_age = Histogram(
            c.ANSWER_DATA_AGE,
            "Age of the data behind an ok answer",
            ["service", "tier", "route", *k],
            buckets=c.DATA_AGE_BUCKETS_S,
            registry=r,
        )
        if llm:
            self.ttft = Histogram(
                c.TIME_TO_FIRST_TOKEN,
                "Time to the first output token",
                ["service", "tier", "route", "outcome", *k],
                buckets=c.TTFT_BUCKETS_S,
                registry=r,
            )
            self.tpot = Histogram(
                c.TIME_PER_OUTPUT_TOKEN,
                "Time per output token after the first",
                ["service", "tier", "route", *k],
                buckets=c.TPOT_BUCKETS_S,
                registry=r,
            )
            self.tokens = Counter(
                _base(c.TOKENS_TOTAL),
                "LLM tokens by provider, model and direction",
                ["service", "tier", "route", "provider", "model", "direction", *k],
                registry=r,
            )
        self.stage_duration = Histogram(
            c.STAGE_DURATION,
            "Time an ok answer spent per stage",
            ["service", "tier", "stage", *k],
            buckets=c.STAGE_BUCKETS_S,
            registry=r,
        )
        self.queue_depth = Gauge(c.QUEUE_DEPTH, "Queued requests", ["service", "tier"], registry=r)
        self.active_workers = Gauge(c.ACTIVE_WORKERS, "Active workers", ["service", "tier"], registry=r)
        self.confidence = Gauge(
            c.MODEL_CONFIDENCE,
            "Mean model confidence over the last minute",
            ["service", "tier", "model_version"],
            registry=r,
        )
        self.temperature = Gauge(c.DEVICE_TEMPERATURE, "Device temperature", ["tier", "device"], registry=r)
        self.memory_headroom = Gauge(c.MEMORY_HEADROOM, "Free memory", ["tier", "device"], registry=r)
        self.backhaul_rtt = Gauge(c.BACKHAUL_RTT, "Round trip to the cloud", ["tier", "target"], registry=r)
        self.config_revision = Gauge(
            c.CONFIG_REVISION, "Applied config revision", ["gateway", "document_kind"], registry=r
        )
        self.config_revision_info = Gauge(
            c.CONFIG_REVISION_INFO,
            "Applied config revision (info)",
            ["gateway", "document_kind", "document", "revision"],
            registry=r,
        )
