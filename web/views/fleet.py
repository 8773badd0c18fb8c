"""Dashboard page of the fleet: gateways by tier and region, health, revisions, NACKs.

Reads go through `routing.fleet.selectors`; the health filter runs in SQL (`health_q`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from controlplane.lib.charts import duration
from controlplane.roles import VIEWER
from routing.fleet.adapters import litellm_view
from routing.fleet.health import DEFAULT_STALE_AFTER_S, HEALTH_STATES
from routing.fleet.selectors import (
    applied_document_versions,
    fleet_summary,
    gateway_health_of,
    gateway_queryset,
)
from routing.models.fleet import KIND_LITELLM
from slo.spec import TIERS
from web.access import role_required

# the dashboard's URL segment and short name of each document kind in a bundle
KIND_SLUGS = {"routing_policy": "routing-policies", "cache_config": "cache-configs"}
SHORT = {"routing_policy": "policy", "cache_config": "cache"}


def health_q(health: str, *, now: datetime, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> Q:
    """`routing.fleet.health.gateway_health` as a query filter, so the fleet page can filter and
    paginate in SQL (tests check both agree)."""
    cutoff = now - timedelta(seconds=stale_after_s)
    seen = Q(last_heartbeat_at__isnull=False, last_heartbeat_at__gte=cutoff)
    runs_desired = Q(desired_revision__isnull=True) | Q(applied_revision=F("desired_revision"))
    nacked_desired = Q(last_nack_revision=F("desired_revision"))
    if health == "pending":
        return Q(last_heartbeat_at__isnull=True, desired_revision__isnull=True)
    if health == "stale":
        return Q(last_heartbeat_at__isnull=True, desired_revision__isnull=False) | Q(
            last_heartbeat_at__lt=cutoff
        )
    if health == "healthy":
        return seen & runs_desired
    # below: seen, something desired and not what it runs (applied may be NULL)
    off = (
        seen
        & Q(desired_revision__isnull=False)
        & ~Q(applied_revision=F("desired_revision"), applied_revision__isnull=False)
    )
    if health == "nacked":
        return off & nacked_desired
    if health == "drifted":
        return off & (Q(last_nack_revision__isnull=True) | ~Q(last_nack_revision=F("desired_revision")))
    raise ValueError(f"unknown health {health!r}")


def _rotation_state(gateway: Any, now: Any) -> dict[str, Any] | None:
    """A credential rotation still in its grace window: until when, and whether the old token is
    still used (so the operator knows the gateway has switched before it is cut off)."""
    ends = [
        t
        for t in (gateway.previous_token_expires_at, gateway.previous_signing_secret_expires_at)
        if t is not None and t > now
    ]
    if not ends:
        return None
    used = gateway.previous_token_last_used_at
    token_window = gateway.previous_token_expires_at is not None and gateway.previous_token_expires_at > now
    return {
        "until": max(ends),
        "old_token": (
            f"old token used {duration((now - used).total_seconds())} ago"
            if used
            else "old token not used since"
        )
        if token_window
        else "",
        "switched": token_window and used is None,
    }


MAX_ADAPTER_VIEWS = 10  # each is a live read-back of a proxy


@login_required
@role_required(VIEWER)
def fleet(request: HttpRequest) -> HttpResponse:
    """Gateways by tier and region: desired vs applied revision, heartbeat age, NACKs."""
    now = timezone.now()
    gateways = gateway_queryset().order_by("tier", "region", "name")
    filters = {
        "service": request.GET.get("service", "")[:63],
        "tier": request.GET.get("tier", ""),
        "region": request.GET.get("region", "")[:63],
        "health": request.GET.get("health", ""),
    }
    if filters["service"]:
        gateways = gateways.filter(service__name=filters["service"])
    if filters["tier"] in TIERS:
        gateways = gateways.filter(tier=filters["tier"])
    else:
        filters["tier"] = ""
    if filters["region"]:
        gateways = gateways.filter(region=filters["region"])
    if filters["health"] in HEALTH_STATES:
        gateways = gateways.filter(health_q(filters["health"], now=now))
    else:
        filters["health"] = ""
    summary = fleet_summary(gateways=gateways, now=now)
    page = Paginator(gateways, 100).get_page(request.GET.get("page"))
    rows = []
    versions = applied_document_versions(gateways=list(page))
    for gateway in page:
        age = (now - gateway.last_heartbeat_at).total_seconds() if gateway.last_heartbeat_at else None
        rows.append(
            {
                "gateway": gateway,
                "health": gateway_health_of(gateway, now=now),
                "heartbeat_age": duration(age) if age is not None else "never",
                "in_sync": gateway.desired_revision is None
                or gateway.desired_revision == gateway.applied_revision,
                "rotation": _rotation_state(gateway, now),
                "versions": [
                    {**v, "kind_slug": KIND_SLUGS[v["kind"]], "short": SHORT[v["kind"]]}
                    for v in versions.get(gateway.pk, [])
                ],
            }
        )
    # gateways of another kind: their compiled config, what they run (read back) and the diff
    adapter_views = [
        {**litellm_view(gateway, read_back_timeout_s=2), "gateway": gateway}
        for gateway in page
        if gateway.kind == KIND_LITELLM
    ][:MAX_ADAPTER_VIEWS]
    query = request.GET.copy()
    query.pop("page", None)
    all_gateways = gateway_queryset().order_by()
    return render(
        request,
        "routing/fleet.html",
        {
            "nav": "fleet",
            "summary": summary,
            "page": page,
            "rows": rows,
            "adapter_views": adapter_views,
            "filters": filters,
            "query": query.urlencode(),
            "tiers": TIERS,
            "healths": HEALTH_STATES,
            "regions": sorted(r for r in all_gateways.values_list("region", flat=True).distinct() if r),
            "service_names": sorted(all_gateways.values_list("service__name", flat=True).distinct()),
        },
    )
