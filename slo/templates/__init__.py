"""Inference-server SLO templates (pure: no Django): one module per project and a builder."""

from __future__ import annotations

from slo.templates import litellm, tgi, triton, vllm
from slo.templates.base import Counter, LatencySli, RatioSli, Template

TEMPLATES: dict[str, Template] = {
    t.name: t for t in (vllm.TEMPLATE, triton.TEMPLATE, tgi.TEMPLATE, litellm.TEMPLATE)
}

__all__ = ["TEMPLATES", "Counter", "LatencySli", "RatioSli", "Template"]
