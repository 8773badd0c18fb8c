"""Decision provenance: what a gateway ran at an instant, which release put it there, and which rule
of that policy would have routed a given request.

"Applied at t" is the newest revision the gateway confirmed by then: a delivery ACKed (push) or
confirmed by a heartbeat (poll) at or before t. Documents are matched to their versions by the
sha256 of their canonical JSON, the way the documents app matches the fleet's applied bundles.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from controlplane.errors import NotFound, ValidationFailed
from routing.models.fleet import Delivery, Gateway, GatewayRevision
from routing.models.releases import ModelVersion, Release
from routing.releases.inputs import GatewayRef, parse_input
from slo.spec import Problem


def _gateway(gateway_id: Any) -> Gateway:
    gateway_id = parse_input(GatewayRef, {"gateway": gateway_id}, detail="invalid input").gateway
    gateway = Gateway.objects.select_related("service").filter(pk=gateway_id).first()
    if gateway is None:
        raise NotFound("no such gateway")
    return gateway


def applied_revision_at(*, gateway: Gateway, at: datetime) -> tuple[GatewayRevision | None, dict[str, Any]]:
    """The revision the gateway ran at `at`, with how we know."""
    delivery = (
        Delivery.objects.filter(gateway=gateway, state=Delivery.ACKED, finished_at__lte=at)
        .select_related("revision")
        .order_by("-finished_at", "-revision__revision")
        .first()
    )
    if delivery is None:
        return None, {"basis": "no acknowledged revision at that time (bootstrap config or unknown)"}
    return delivery.revision, {
        "basis": "acknowledged delivery",
        "delivery": delivery.pk,
        "acknowledged_at": delivery.finished_at,
        "note": delivery.last_error or "",
    }


def _document_version(kind_model: Any, service_id: int, document: Any) -> dict[str, Any] | None:
    from routing.documents.yamlio import canonical_sha256

    if not isinstance(document, dict):
        return None
    digest = canonical_sha256(document)
    row = (
        kind_model.objects.filter(line__service_id=service_id, document_sha256=digest)
        .order_by("-version")
        .values("version", "state", "created_at", "author_name")
        .first()
    )
    return (
        {"sha256": digest, **row}
        if row
        else {"sha256": digest, "version": None, "note": "no stored version has this document"}
    )


def provenance_at(*, gateway_id: Any, at: datetime) -> dict[str, Any]:
    """Which policy, cache config and model versions gateway `gateway_id` applied at `at`, and the
    release that put them there."""
    from routing.models.documents import CacheConfigVersion, RoutingPolicyVersion

    gateway = _gateway(gateway_id)
    revision, basis = applied_revision_at(gateway=gateway, at=at)
    answer: dict[str, Any] = {
        "gateway": {"id": gateway.pk, "name": gateway.name, "service": gateway.service.name},
        "at": at,
        **basis,
        "revision": None,
    }
    if revision is None:
        return answer
    bundle = revision.bundle
    model_label = bundle.get("model_version")
    model = None
    if isinstance(model_label, str) and ":" in model_label:
        name, _, version = model_label.partition(":")
        model = ModelVersion.objects.filter(service_id=gateway.service_id, name=name, version=version).first()
    release = Release.objects.filter(pk=revision.release_id).first() if revision.release_id else None
    answer.update(
        {
            "revision": revision.revision,
            "revision_created_at": revision.created_at,
            "reason": revision.reason,
            "rollback": revision.rollback,
            "set_by": revision.actor_name,
            "routing_policy": _document_version(
                RoutingPolicyVersion, gateway.service_id, bundle.get("routing_policy")
            ),
            "cache_config": _document_version(
                CacheConfigVersion, gateway.service_id, bundle.get("cache_config")
            ),
            "model_version": {
                "label": model_label,
                "id": model.pk if model else None,
                "artifact_digest": model.artifact_digest if model else None,
                "training_data_snapshot": model.training_data_snapshot if model else None,
            },
            "release": None
            if release is None
            else {
                "id": release.pk,
                "kind": release.kind,
                "state": release.state,
                "author": release.author_name,
                "reason": release.reason,
                "as": "rollback" if revision.rollback else "rollout",
            },
        }
    )
    return answer


def provenance_route(*, gateway_id: Any, at: datetime, context: Any) -> dict[str, Any]:
    """Which rule of the policy applied at `at` would have routed a request with `context`."""
    from routing.documents.validation import context_problems
    from routing.policy import PolicyError, compile_policy, decide

    if not isinstance(context, Mapping):
        raise ValidationFailed(
            "invalid input", problems=[Problem("context", "an object (the request context)")]
        )
    problems = context_problems(context)
    if problems:
        raise ValidationFailed("invalid request context", problems=problems)
    answer = provenance_at(gateway_id=gateway_id, at=at)
    if answer["revision"] is None:
        raise NotFound("the gateway had no acknowledged revision at that time", extra={"provenance": answer})
    gateway = Gateway.objects.select_related("service").get(pk=answer["gateway"]["id"])
    bundle = GatewayRevision.objects.get(gateway=gateway, revision=answer["revision"]).bundle
    try:
        compiled = compile_policy(bundle["routing_policy"], service_class=gateway.service.service_class)
    except (PolicyError, ValueError, KeyError) as exc:
        raise ValidationFailed(
            "the stored policy cannot be compiled", problems=[Problem("routing_policy", str(exc)[:500])]
        ) from None
    full_context = {"service_class": gateway.service.service_class, **dict(context)}
    decision = decide(compiled, full_context, explain=True)
    return {
        "provenance": answer,
        "context": full_context,
        "decision": decision.as_dict(),
        "routes": list(decision.routes),
        "explanation": decision.explain().splitlines(),
    }
