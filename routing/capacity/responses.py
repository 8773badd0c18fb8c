"""Budget-driven responses: when a service burns fast (a page-severity burn-rate alert firing), the
control plane proposes the seed's responses for a person to approve: moving traffic to the safer
chain (here), raising the semantic cache threshold and freezing model churn (more_responses.py),
each with the simulation or evidence of its effect.

The safer chain: the route with the highest **measured** error ratio over the last hour (from the
service's telemetry; assumed figures never decide) moves to the end of every chain of the policy
the fleet runs, so requests try it last. No proposal when no route is measured worse than another
or the policy would not change. One proposal per alert episode (alert key and firing time).

Approving (an approver) approves the draft version and writes a draft hotfix release of it, which
goes through the usual submission, gates and waves; dismissing retires the draft version. Approving
a model freeze holds the service's model-version releases; dismissing it changes nothing.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import DomainError, IllegalTransition, NotFound
from routing.documents import selectors as documents
from routing.documents.kinds import ROUTING_POLICY
from routing.documents.services import (
    cache_config_approve,
    cache_config_retire,
    routing_policy_approve,
    routing_policy_retire,
    routing_policy_update,
)
from routing.documents.simulation import route_stats_for, routing_policy_simulate
from routing.models.documents import RoutingPolicyDocument
from routing.models.responses import (
    APPROVED,
    CACHE_THRESHOLD,
    DISMISSED,
    MODEL_FREEZE,
    PROPOSED,
    SAFER_CHAIN,
    BudgetResponse,
)
from slo.models.budget import AlertState

ACTOR = "system:budget-responses"


def safer_chain_document(document: dict[str, Any], unsafe: str) -> dict[str, Any]:
    """The policy with every hop on `unsafe` moved to the end of its chain (order otherwise kept)."""
    out = copy.deepcopy(document)

    def reorder(chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [h for h in chain if h.get("route") != unsafe] + [h for h in chain if h.get("route") == unsafe]

    for rule in out.get("rules", []):
        if isinstance(rule.get("chain"), list):
            rule["chain"] = reorder(rule["chain"])
    if isinstance(out.get("default_chain"), list):
        out["default_chain"] = reorder(out["default_chain"])
    return out


def _unsafe_route(stats: dict[str, dict[str, Any]]) -> tuple[str, float, float] | None:
    """(route, its error ratio, the best other measured one) when one measured route is worse."""
    measured = {
        route: entry["stats"]["error_ratio"]
        for route, entry in stats.items()
        if entry["source"]["error_ratio"] == "measured"
    }
    if len(measured) < 2:
        return None
    worst = max(measured, key=lambda r: measured[r])
    others = [v for r, v in measured.items() if r != worst]
    if measured[worst] <= max(others):
        return None
    return worst, measured[worst], min(others)


def budget_responses_propose(*, now: datetime | None = None) -> list[BudgetResponse]:
    """Propose responses for every service with a page-severity burn-rate alert firing."""
    now = now or timezone.now()
    firing = AlertState.objects.filter(kind="burn_rate", severity="page", firing=True).select_related(
        "service", "slo"
    )
    from routing.capacity.more_responses import propose_cache_threshold, propose_model_freeze

    proposers = {
        SAFER_CHAIN: _propose_safer_chain,
        CACHE_THRESHOLD: lambda alert, now: propose_cache_threshold(alert, now, _trigger(alert, now)),
        MODEL_FREEZE: lambda alert, now: propose_model_freeze(alert, now, _trigger(alert, now)),
    }
    proposed = []
    for alert in firing:
        for kind, propose in proposers.items():
            if BudgetResponse.objects.filter(
                service=alert.service, kind=kind, trigger_key=alert.key, trigger_since=alert.since
            ).exists():
                continue
            try:
                response = propose(alert, now)
            except IntegrityError:  # another worker proposed for this episode first
                response = None
            if response is not None:
                proposed.append(response)
    return proposed


def _trigger(alert: AlertState, now: datetime) -> dict[str, Any]:
    return _jsonable(
        {"alert": alert.key, "slo": alert.slo_id, "since": alert.since or now, "evidence": _evidence(alert)}
    )


def _propose_safer_chain(alert: AlertState, now: datetime) -> BudgetResponse | None:
    service = alert.service
    line = RoutingPolicyDocument.objects.filter(service=service).first()
    if line is None:
        return None
    baseline = documents.baseline_version(kind=ROUTING_POLICY, line=line)
    if baseline is None:
        return None
    stats = route_stats_for(service=service, now=now)
    unsafe = _unsafe_route(stats)
    if unsafe is None:
        return None
    route, ratio, best = unsafe
    candidate = safer_chain_document(baseline.document, route)
    if candidate == baseline.document:
        return None
    summary = (
        f"move {route} to the end of every chain: its measured error ratio {ratio:.4g} is the worst "
        f"(best other route {best:.4g}) while {alert.slo.name if alert.slo else service.name} burns fast"
    )
    try:
        with transaction.atomic():
            line, created = routing_policy_update(
                actor=ACTOR,
                line_id=line.pk,
                document=candidate,
                note=f"budget response: {summary}"[:2000],
                now=now,
            )
            if not created:
                return None
            version = line.current_version
            try:
                simulation = routing_policy_simulate(
                    line=line,
                    body={"candidate_version": version, "baseline_version": baseline.version},
                    now=now,
                )
            except DomainError as exc:
                simulation = {"error": exc.message, "problems": list(getattr(exc, "problems", []))[:10]}
            response = BudgetResponse.objects.create(
                service=service,
                kind=SAFER_CHAIN,
                summary=summary[:500],
                trigger_key=alert.key,
                trigger_since=alert.since or now,
                trigger=_trigger(alert, now),
                line_id=line.pk,
                baseline_version=baseline.version,
                version=version,
                simulation=_jsonable(simulation),
                created_at=now,
            )
            audit_record(actor=ACTOR, action="propose", obj=response, after={"summary": response.summary})
    except IntegrityError:  # another worker proposed for this episode first
        return None
    return response


def _evidence(alert: AlertState) -> dict[str, Any]:
    return dict(alert.last_event.evidence) if alert.last_event_id and alert.last_event else {}


def _jsonable(value: Any) -> Any:
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _claim(response_id: int, to_state: str, actor: Any, comment: str, now: datetime) -> BudgetResponse:
    name = actor.get_username() if getattr(actor, "is_authenticated", False) else str(actor)
    claimed = BudgetResponse.objects.filter(pk=response_id, state=PROPOSED).update(
        state=to_state, decided_at=now, decided_by_name=name[:150], comment=comment
    )
    response = BudgetResponse.objects.select_related("service").filter(pk=response_id).first()
    if response is None:
        raise NotFound("no such budget response")
    if not claimed:
        raise IllegalTransition(
            f"the response is {response.state}; only a proposed one can be decided",
            problems=[{"path": "state", "message": f"is {response.state}"}],
        )
    return response


def budget_response_approve(*, actor: Any, response_id: int, comment: str = "", now: datetime | None = None):
    """Approve the proposed version and write a draft hotfix release of it (one transaction)."""
    from routing.releases.lifecycle import release_create

    now = now or timezone.now()
    with transaction.atomic():
        response = _claim(response_id, APPROVED, actor, comment, now)
        after: dict[str, Any] = {"state": APPROVED, "comment": comment}
        if response.kind == MODEL_FREEZE:
            from routing.capacity.more_responses import model_freeze_apply

            after.update(model_freeze_apply(response=response, now=now))
        else:
            cache = response.kind == CACHE_THRESHOLD
            approve = cache_config_approve if cache else routing_policy_approve
            approve(actor=actor, line_id=response.line_id, version=response.version, now=now)
            field = "cache_config_version" if cache else "routing_policy_version"
            title = "semantic cache threshold" if cache else "safer chain"
            release = release_create(
                actor=actor,
                data={
                    "service": response.service.name,
                    "kind": "hotfix",
                    "title": f"Budget response: {title} (v{response.version})",
                    "reason": response.summary,
                    field: response.version,
                    "confirm_wave_sizes": True,
                },
                now=now,
            )
            response.release = release
            response.save(update_fields=["release"])
            after["release"] = release.pk
        audit_record(actor=actor, action="approve", obj=response, before={"state": PROPOSED}, after=after)
    return response


def budget_response_dismiss(*, actor: Any, response_id: int, comment: str = "", now: datetime | None = None):
    """Dismiss the proposal and retire its draft version."""
    now = now or timezone.now()
    with transaction.atomic():
        response = _claim(response_id, DISMISSED, actor, comment, now)
        if response.kind != MODEL_FREEZE:
            retire = cache_config_retire if response.kind == CACHE_THRESHOLD else routing_policy_retire
            retire(actor=actor, line_id=response.line_id, version=response.version, now=now)
        audit_record(
            actor=actor,
            action="dismiss",
            obj=response,
            before={"state": PROPOSED},
            after={"state": DISMISSED, "comment": comment},
        )
    return response
