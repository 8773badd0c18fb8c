from __future__ import annotations

from slo.models.catalog import Service, Slo, SloVersion

__all__ = ["Service", "Slo", "SloVersion"]
