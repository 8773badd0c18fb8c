"""Demo catalog for the embedded mode: three inference services of different classes,
each with SLOs on its edge and cloud tiers. Idempotent: existing objects are kept.

shelf-vision serves two request classes (its demo gateways draw them: live camera frames are
`interactive`, the nightly planogram audit is `batch`), with an SLO per class, and its private
cloud runs a vision-language model whose time to first token has an SLO of its own."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from slo import services
from slo.models import Service, Slo

DEMO_SERVICES: list[dict[str, Any]] = [
    {
        "name": "shelf-vision",
        "display_name": "Shelf vision",
        "service_class": "interactive",
        "owner": "retail-vision",
        "tiers": ["edge", "private_cloud", "public_cloud"],
        "labels": {"team": "retail-vision", "domain": "retail"},
        "description": "Detects empty shelves and misplaced products from store cameras.",
    },
    {
        "name": "fraud-score",
        "display_name": "Checkout fraud score",
        "service_class": "safety_critical",
        "owner": "payments-ml",
        "tiers": ["edge", "private_cloud"],
        "multi_tenant": True,
        "labels": {"team": "payments-ml", "domain": "payments"},
        "description": "Scores card-present transactions at the till before authorisation.",
    },
    {
        "name": "doc-summarizer",
        "display_name": "Document summarizer",
        "service_class": "batch",
        "owner": "knowledge-platform",
        "tiers": ["private_cloud", "public_cloud"],
        "labels": {"team": "knowledge", "domain": "back-office"},
        "description": "Summarises supplier documents overnight with an LLM.",
    },
]

DEMO_SLOS: list[dict[str, Any]] = [
    {
        "service": "shelf-vision",
        "name": "edge-latency",
        "tier": "edge",
        "sli": {"kind": "latency", "threshold_ms": 150},
        "objective": 99.0,
        "window": {"type": "rolling", "days": 28},
        "display_name": "Edge answers within 150 ms",
    },
    {
        "service": "shelf-vision",
        "name": "edge-availability",
        "tier": "edge",
        "sli": {"kind": "availability"},
        "objective": 99.5,
        "window": {"type": "rolling", "days": 28},
    },
    # private cloud: the tier of the demo's cloud gateway, so the SLO has a live source; 300 ms is a
    # bucket boundary of the contract's latency histogram (400 ms is not: it would never have data)
    {
        "service": "shelf-vision",
        "name": "cloud-latency",
        "tier": "private_cloud",
        "sli": {"kind": "latency", "threshold_ms": 300},
        "objective": 99.0,
        "window": {"type": "rolling", "days": 28},
    },
    # one service, two classes: the same edge traffic judged per class (docs/telemetry.md, classes)
    {
        "service": "shelf-vision",
        "name": "interactive-latency",
        "tier": "edge",
        "service_class": "interactive",
        "sli": {"kind": "latency", "threshold_ms": 150},
        "objective": 99.0,
        "window": {"type": "rolling", "days": 28},
        "display_name": "Live camera frames within 150 ms",
    },
    {
        "service": "shelf-vision",
        "name": "batch-availability",
        "tier": "edge",
        "service_class": "batch",
        "sli": {"kind": "availability"},
        "objective": 99.0,
        "window": {"type": "rolling", "days": 28},
        "display_name": "Planogram audit requests answered",
    },
    # the vision-language model in the private cloud: first token within 250 ms
    {
        "service": "shelf-vision",
        "name": "cloud-ttft",
        "tier": "private_cloud",
        "sli": {"kind": "ttft", "threshold_ms": 250},
        "objective": 99.0,
        "window": {"type": "rolling", "days": 28},
        "display_name": "Shelf descriptions start within 250 ms",
    },
    {
        "service": "shelf-vision",
        "name": "fallback-success",
        "tier": "private_cloud",
        "sli": {"kind": "fallback_success"},
        "objective": 99.0,
        "window": {"type": "rolling", "days": 28},
    },
    {
        "service": "fraud-score",
        "name": "edge-latency",
        "tier": "edge",
        "sli": {"kind": "latency", "threshold_ms": 50},
        "objective": 99.9,
        "window": {"type": "rolling", "days": 30},
        "min_valid_events": 100,
    },
    {
        "service": "fraud-score",
        "name": "cloud-availability",
        "tier": "private_cloud",
        "sli": {"kind": "availability"},
        "objective": 99.95,
        "window": {"type": "rolling", "days": 30},
    },
    {
        "service": "fraud-score",
        "name": "cache-correctness",
        "tier": "edge",
        "sli": {"kind": "correctness"},
        "objective": 99.9,
        "window": {"type": "calendar", "unit": "month"},
    },
    {
        "service": "doc-summarizer",
        "name": "cloud-availability",
        "tier": "public_cloud",
        "sli": {"kind": "availability"},
        "objective": 99.0,
        "window": {"type": "calendar", "unit": "week"},
    },
    {
        "service": "doc-summarizer",
        "name": "private-freshness",
        "tier": "private_cloud",
        "sli": {"kind": "freshness", "max_age_s": 86400},
        "objective": 95.0,
        "window": {"type": "rolling", "days": 7},
    },
]


def seed_demo_catalog(*, actor: Any = "demo-seed") -> dict[str, int]:
    """Create the demo services and SLOs that are missing; returns counts created."""
    created = {"services": 0, "slos": 0}
    with transaction.atomic():
        for doc in DEMO_SERVICES:
            if not Service.objects.filter(name=doc["name"]).exists():
                services.service_create(actor=actor, data=doc)
                created["services"] += 1
        for doc in DEMO_SLOS:
            if not Slo.objects.filter(service__name=doc["service"], name=doc["name"]).exists():
                services.slo_create(actor=actor, data=doc, note="demo seed")
                created["slos"] += 1
    return created
