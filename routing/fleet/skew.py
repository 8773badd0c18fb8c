"""Feed the model-version skew alert from what the fleet runs.

Routing knows each gateway's applied bundle; slo owns the alert (`model_skew_apply`) and never
imports routing, so routing hands it plain `(service, tier, model_version)` rows.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F

from routing.models.fleet import GatewayRevision
from slo.budget.services import model_skew_apply


def model_skew_rows() -> list[tuple[str, str, str]]:
    """`(service, tier, model_version)` per gateway from its applied revision's bundle. Gateways
    with no applied revision, or whose applied bundle names no model version, are left out: they
    report nothing, which is not a verdict."""
    # One query: the revision row whose number is the gateway's applied one.
    rows = GatewayRevision.objects.filter(gateway__applied_revision=F("revision")).values_list(
        "gateway__service__name", "gateway__tier", "bundle__model_version"
    )
    return [
        (service, tier, version) for service, tier, version in rows if isinstance(version, str) and version
    ]


def model_skew_feed(*, now: datetime) -> int:
    """Run the model-skew alert over the whole fleet. Returns the number of alert transitions;
    idempotent (alert states are claimed by conditional updates)."""
    return model_skew_apply(rows=model_skew_rows(), now=now)
