"""The bundle a release puts on a gateway: the gateway's last-known-good (its applied revision)
with the release's documents and model swapped in.
"""

from __future__ import annotations

from typing import Any

from routing.models.fleet import Gateway, GatewayRevision
from routing.models.releases import Release


def applied_bundles(gateways: list[Gateway]) -> dict[int, tuple[int | None, dict[str, Any] | None]]:
    """gateway id -> (applied revision, its bundle): the last-known-good of each gateway."""
    wanted = [(g.pk, g.applied_revision) for g in gateways if g.applied_revision is not None]
    rows = {}
    if wanted:
        from django.db.models import Q

        condition = Q()
        for gateway_id, revision in wanted:
            condition |= Q(gateway_id=gateway_id, revision=revision)
        rows = {(r.gateway_id, r.revision): r.bundle for r in GatewayRevision.objects.filter(condition)}
    return {g.pk: (g.applied_revision, rows.get((g.pk, g.applied_revision))) for g in gateways}


def release_bundle(release: Release, base: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    """The bundle a gateway gets: its last-known-good with the release's parts swapped in."""
    base = base or {}
    bundle = {
        "revision": 1,  # placeholder: gateway_set_desired numbers it
        "service": release.service.name,
        "routing_policy": release.routing_policy_version.document
        if release.routing_policy_version_id
        else base.get("routing_policy"),
        "cache_config": release.cache_config_version.document
        if release.cache_config_version_id
        else base.get("cache_config"),
        "model_version": release.model_version.label
        if release.model_version_id
        else base.get("model_version"),
    }
    missing = [k for k in ("routing_policy", "cache_config") if not isinstance(bundle[k], dict)]
    if missing:
        return None, f"runs no {' or '.join(missing)} yet: the release must include one"
    return bundle, ""


def release_bundles(
    release: Release, gateways: list[Gateway]
) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    applied = applied_bundles(gateways)
    bundles, missing = {}, {}
    for gateway in gateways:
        bundle, why = release_bundle(release, applied[gateway.pk][1])
        if bundle is None:
            missing[gateway.pk] = why
        else:
            bundles[gateway.pk] = bundle
    return bundles, missing
