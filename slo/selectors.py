"""Reads for the SLO catalog."""

from __future__ import annotations

from typing import Any

from slo.models import SloVersion


def slo_version_specs(*, slo_id: int, versions: list[int]) -> dict[int, dict[str, Any]]:
    rows = SloVersion.objects.filter(slo_id=slo_id, version__in=versions).values_list("version", "spec")
    return dict(rows)
