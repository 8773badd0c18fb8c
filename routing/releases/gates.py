"""Release gates: each returns a `GateOutcome` (pass / fail / inconclusive / not_evaluated) with its
evidence (values and thresholds). Services store every outcome as a `GateResult` row.

* `documents`: every target version validates and is approved (not a draft, not retired); every
  target gateway's new bundle validates.
* `error_budget`: the error-budget policy of every affected service (slo's release_budget_check):
  exhausted freezes everything but hotfix and rollback; low asks for extra approvals.
* `paging`: no affected SLO is paging (hotfix and rollback releases exist to fix that: recorded, not held).
* `data_quality`: an SLO without a verdict (no data, too little traffic, stale or never evaluated)
  makes the gate *inconclusive*: the release pauses for a person. Never a silent pass.
* `simulation`: the candidate routing policy, replayed on the request contexts the service's gateways
  recorded over the last hour and played against measured route behaviour, must not predict a burn
  above 1 (spending budget faster than the SLO allows). No recorded traffic (or a simulator failure)
  makes it *inconclusive*: never a pass by default. Marked `not_evaluated`, with the reason, when
  it does not apply (no policy in the release, no baseline version, no latency SLO).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controlplane.errors import DomainError
from routing.fleet.bundle import bundle_problems, errors_only
from routing.models.documents import APPROVED, RETIRED
from routing.models.releases import Release

logger = logging.getLogger(__name__)

PASS, FAIL, INCONCLUSIVE, NOT_EVALUATED = "pass", "fail", "inconclusive", "not_evaluated"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
NO_VERDICT = frozenset({"no_data", "insufficient_traffic", "stale", "not_evaluated"})
MAX_PROBLEMS = 20


@dataclass
class GateOutcome:
    gate: str
    outcome: str
    evidence: dict[str, Any] = field(default_factory=dict)


def gate_documents(
    *, release: Release, bundles: dict[int, dict[str, Any]], missing: dict[int, str]
) -> GateOutcome:
    """`bundles`: gateway id -> the bundle the release would give it; `missing`: gateway id -> why
    no bundle can be built."""
    from routing.documents.kinds import CACHE_CONFIG, ROUTING_POLICY
    from routing.documents.selectors import document_check

    problems: list[dict[str, str]] = []
    checked: dict[str, Any] = {}
    service = release.service
    for key, kind, version in (
        ("routing_policy", ROUTING_POLICY, release.routing_policy_version),
        ("cache_config", CACHE_CONFIG, release.cache_config_version),
    ):
        if version is None:
            continue
        result = document_check(kind=kind, service=service, document=version.document)
        checked[key] = {
            "version": version.version,
            "state": version.state,
            "errors": len(result.errors),
            "warnings": len(result.warnings),
        }
        if version.state == RETIRED:
            problems.append({"path": key, "message": f"version {version.version} is retired"})
        elif version.state != APPROVED:  # a draft cannot ride along: only reviewed versions ship
            problems.append(
                {"path": key, "message": f"version {version.version} is {version.state}, not approved"}
            )
        problems += [{"path": f"{key}.{p.path}".rstrip("."), "message": p.message} for p in result.errors]
    model = release.model_version
    if model is not None:
        checked["model_version"] = {"label": model.label, "artifact_digest": model.artifact_digest}
        if model.service_id != service.pk:
            problems.append({"path": "model_version", "message": "belongs to another service"})
        if not DIGEST_RE.match(model.artifact_digest or ""):
            problems.append(
                {"path": "model_version.artifact_digest", "message": "not a sha256:<64 hex> digest"}
            )
    for gateway_id, why in sorted(missing.items()):
        problems.append({"path": f"gateways[{gateway_id}]", "message": why})
    for gateway_id, bundle in sorted(bundles.items()):
        for p in errors_only(
            bundle_problems(bundle, service_class=service.service_class, multi_tenant=service.multi_tenant)
        ):
            problems.append({"path": f"gateways[{gateway_id}].{p.path}".rstrip("."), "message": p.message})
    not_enforced = _not_enforced(bundles)
    for gateway_id, notes in sorted(not_enforced.items()):
        for note in notes:
            if note.get("error"):
                problems.append({"path": f"gateways[{gateway_id}].{note['path']}", "message": note["reason"]})
    evidence = {
        "checked": checked,
        "gateways": len(bundles) + len(missing),
        # per gateway of a kind that cannot run all of the policy: what it will not enforce
        "not_enforced": {
            str(g): [
                {"path": n["path"], "reason": f"not enforced on this gateway kind: {n['reason']}"}
                for n in notes
            ]
            for g, notes in not_enforced.items()
            if any(not n.get("error") for n in notes)
        },
        "problems": problems[:MAX_PROBLEMS],
        "problem_count": len(problems),
    }
    return GateOutcome("documents", FAIL if problems else PASS, evidence)


def _not_enforced(bundles: dict[int, dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Gateway id -> what its kind does not enforce of its bundle (and, flagged `error`, why it
    cannot compile it at all). Only gateways of another kind than the reference one appear."""
    from routing.fleet.adapters import compile_for
    from routing.models.fleet import KIND_LITELLM, Gateway

    out: dict[int, list[dict[str, Any]]] = {}
    for gateway in Gateway.objects.filter(pk__in=list(bundles), kind=KIND_LITELLM):
        compiled = compile_for(gateway, bundles[gateway.pk])
        notes = [dict(n) for n in compiled.not_enforced]
        notes += [{"path": p["path"], "reason": p["message"], "error": True} for p in compiled.problems]
        if notes:
            out[gateway.pk] = notes
    return out


def _budget_status(release: Release, now: datetime) -> dict[str, Any]:
    from slo.budget.selectors import release_budget_check

    return release_budget_check(service_name=release.service.name, change_kind=release.kind, now=now)


def gate_budget(*, release: Release, now: datetime, check: dict[str, Any] | None = None) -> GateOutcome:
    check = check or _budget_status(release, now)
    budget = check["budget"]
    evidence = {
        "service": release.service.name,
        "change_kind": release.kind,
        "state": budget["state"],
        "frozen": budget["frozen"],
        "reason": check["reason"],
        "required_extra_approvals": check["required_extra_approvals"],
        "policy": budget["policy"],
        "policy_source": budget["policy_source"],
        "slos": [
            {"name": s["name"], "remaining": s["remaining"], "data_quality": s["data_quality"]}
            for s in budget["slos"]
        ],
        # Status corrections that excluded minutes from these budgets: when, why, by whom.
        "corrections": [
            {
                k: c[k]
                for k in (
                    "id",
                    "version",
                    "reason",
                    "author",
                    "approved_by",
                    "applied_at",
                    "excluded_minutes",
                )
            }
            for c in budget.get("corrections", [])
        ],
    }
    if check["allowed"] and budget["frozen"]:
        evidence["note"] = f"budget frozen: a {release.kind} release is allowed with a reason"
    allowed = check["allowed"] and _model_freeze(release, now, evidence)
    return GateOutcome("error_budget", PASS if allowed else FAIL, evidence)


def _model_freeze(release: Release, now: datetime, evidence: dict[str, Any]) -> bool:
    """False when an approved model-churn hold (a budget response) refuses this release: it carries a
    model version and its kind is not one the budget policy lets through a freeze."""
    if release.model_version_id is None:
        return True
    from routing.releases.selectors import release_settings_for

    settings = release_settings_for(service_id=release.service_id)
    if settings.model_freeze_until is None or settings.model_freeze_until <= now:
        return True
    kinds = evidence["policy"].get("freeze_allowed_change_kinds") or []
    evidence["model_freeze"] = {
        "until": settings.model_freeze_until.isoformat(),
        "reason": settings.model_freeze_reason,
        "allowed_change_kinds": list(kinds),
    }
    return release.kind in kinds


def gate_paging(*, release: Release, check: dict[str, Any]) -> GateOutcome:
    paging = list(check["paging_slos"])
    evidence: dict[str, Any] = {"paging_slos": paging, "threshold": "no SLO of the service paging"}
    if paging and release.kind in ("hotfix", "rollback"):
        evidence["note"] = f"a {release.kind} release may go out while SLOs page (it is the fix)"
        return GateOutcome("paging", PASS, evidence)
    return GateOutcome("paging", FAIL if paging else PASS, evidence)


def gate_data_quality(*, release: Release, check: dict[str, Any]) -> GateOutcome:
    slos = check["budget"]["slos"]
    # Anything but "ok" has no verdict (NO_VERDICT names the known kinds; an unknown one counts too).
    without = [
        {"name": s["name"], "data_quality": s["data_quality"]} for s in slos if s["data_quality"] != "ok"
    ]
    evidence: dict[str, Any] = {
        "slos": [{"name": s["name"], "data_quality": s["data_quality"]} for s in slos],
        "without_verdict": without,
    }
    if not slos:
        evidence["reason"] = "the service has no SLOs: nothing can tell whether the release hurts it"
        return GateOutcome("data_quality", INCONCLUSIVE, evidence)
    if not without:
        return GateOutcome("data_quality", PASS, evidence)
    if release.kind == "rollback":
        evidence["reason"] = "rollback releases are not held back for missing telemetry"
        return GateOutcome("data_quality", NOT_EVALUATED, evidence)
    evidence["reason"] = "no verdict for " + ", ".join(f"{s['name']} ({s['data_quality']})" for s in without)
    return GateOutcome("data_quality", INCONCLUSIVE, evidence)


def simulation_body(*, release: Release) -> dict[str, Any]:
    """What the simulation gate asks `routing_policy_simulate`: the release's candidate version
    against the baseline, on the traffic its targets' tier and region recorded, with the page's
    defaults otherwise (so the policy page's Simulate shows the same figures for the same data)."""
    selector = release.target_selector or {}
    recorded = {key: selector[key] for key in ("tier", "region") if selector.get(key)}
    assert release.routing_policy_version is not None
    return {"candidate_version": release.routing_policy_version.version, "recorded": recorded}


def gate_simulation(*, release: Release, now: datetime) -> GateOutcome:
    """The candidate routing policy replayed on recorded traffic (docs/releases.md, Gates). No
    recorded traffic, or a simulator failure, is *inconclusive*: it never passes by default."""
    version = release.routing_policy_version
    if version is None:
        return GateOutcome("simulation", NOT_EVALUATED, {"reason": "the release changes no routing policy"})
    from routing.documents.simulation import NoRecordedTraffic, routing_policy_simulate

    body = simulation_body(release=release)
    try:
        report = routing_policy_simulate(line=version.line, body=body, now=now)
    except NoRecordedTraffic as exc:
        return GateOutcome(
            "simulation", INCONCLUSIVE, {"reason": exc.message, "problems": exc.problems, "request": body}
        )
    except DomainError as exc:
        return GateOutcome(
            "simulation", NOT_EVALUATED, {"reason": exc.message, "problems": exc.problems, "request": body}
        )
    except Exception as exc:  # noqa: BLE001 - a simulator bug must not block or pass silently
        logger.exception("simulation of release %s failed", release.pk)
        return GateOutcome(
            "simulation",
            INCONCLUSIVE,
            {"reason": f"simulation failed: {exc.__class__.__name__}", "request": body},
        )
    candidate, baseline = report["candidate"], report["baseline"]
    burn = candidate.get("budget_burn")
    contexts = report["contexts"]
    evidence = {
        "baseline_version": report["baseline_version"],
        "candidate_version": report["candidate_version"],
        "slo": report["slo"],
        "candidate_budget_burn": burn,
        "baseline_budget_burn": baseline.get("budget_burn"),
        "p95_shift_ms": report["p95_shift_ms"],
        "bad_ratio_shift": report["bad_ratio_shift"],
        "candidate_rule_mix": candidate.get("rule_mix", {}),
        "threshold": "candidate budget burn <= 1.0",
        # the verified signal: which recorded traffic the prediction replayed
        "traffic": contexts.get("summary"),
        "contexts": {
            k: contexts.get(k)
            for k in (
                "source",
                "n",
                "seed",
                "recorded_contexts",
                "recorded_requests",
                "sources",
                "tier",
                "region",
                "window_minutes",
            )
        },
        "request": body,
        "route_sources": {route: entry["source"] for route, entry in report["route_stats"].items()},
        "assumptions": report["assumptions"],
    }
    if burn is None:
        evidence["reason"] = "no latency SLO to predict a breach against"
        return GateOutcome("simulation", NOT_EVALUATED, evidence)
    if burn > 1.0:
        evidence["reason"] = (
            f"predicted budget burn {burn:.2f}x (baseline v{report['baseline_version']}: "
            f"{_burn_text(baseline.get('budget_burn'))}) is above 1.0, replaying "
            f"{contexts.get('n')} requests drawn from {contexts.get('summary')}"
        )
        return GateOutcome("simulation", FAIL, evidence)
    return GateOutcome("simulation", PASS, evidence)


def _burn_text(burn: float | None) -> str:
    return f"{burn:.2f}x" if burn is not None else "no burn"


def budget_gates(*, release: Release, now: datetime) -> tuple[list[GateOutcome], int]:
    """The gates that read the budget (submission and before every wave), and extra approvals."""
    check = _budget_status(release, now)
    outcomes = [
        gate_budget(release=release, now=now, check=check),
        gate_paging(release=release, check=check),
        gate_data_quality(release=release, check=check),
    ]
    return outcomes, int(check.get("required_extra_approvals") or 0)
