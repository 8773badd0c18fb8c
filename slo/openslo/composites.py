"""OpenSLO v1 composite SLOs on import (pure).

OpenSLO v1's composite form is an SLO without a top-level indicator whose `objectives[]` each carry
their own `indicator` (or `indicatorRef`), `target` and `compositeWeight` (default 1). It becomes a
composite SLO (docs/composites.md), `weighted_average` over one member per objective:

- **Our own export** (annotation `inference-slo-controlplane/composite` listing the member SLOs):
  the members are those SLOs, which must exist (or be in the same import); their indicators are not
  re-imported (an SLO is changed through its own file). The annotation gives the objective,
  aggregation, traffic floor and alert tiers.
- **Any other file**: each objective becomes a member SLO of the composite's service, named
  `<composite>-<objective displayName or indicator name>`, with the objective's target, the
  composite's time window and budgeting method. v1 has no composite objective: it is the weights'
  average of the members' targets (the journey meets it when every member is at its target), and
  the import says so as a warning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from slo.composites.spec import parse_composite_spec
from slo.openslo.mapping import (
    ANNOTATION_PREFIX,
    API_VERSION,
    DEFAULT_CALENDAR_START,
    _Context,
    _is_number,
    _Object,
    _Report,
    _show,
)
from slo.openslo.windows import _time_window
from slo.spec import SloSpec, slugify_name

ANNOTATION_COMPOSITE = ANNOTATION_PREFIX + "composite"
_MEMBER_KEYS = {"indicator", "indicatorRef", "compositeWeight"}


def is_composite(spec: dict[Any, Any]) -> bool:
    """An SLO spec in v1's composite form: no top-level indicator, objectives with their own."""
    objectives = spec.get("objectives")
    return (
        spec.get("indicator") is None
        and spec.get("indicatorRef") is None
        and isinstance(objectives, list)
        and any(isinstance(o, dict) and ({"indicator", "indicatorRef"} & set(o)) for o in objectives)
    )


def composite_extension(obj: _Object, report: _Report) -> dict[str, Any] | None:
    """Our annotation on an exported composite, or None when the file is not ours."""
    annotations = obj.metadata.get("annotations")
    raw = annotations.get(ANNOTATION_COMPOSITE) if isinstance(annotations, dict) else None
    if raw is None:
        return None
    path = f"{obj.path}.metadata.annotations.{ANNOTATION_COMPOSITE}"
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError as exc:
        report.error(path, f"must be JSON: {exc}")
        return None
    if not isinstance(value, dict) or not isinstance(value.get("members"), list):
        report.error(path, "must be a JSON object with the member SLOs in `members`")
        return None
    return value


def member_objects(obj: _Object, report: _Report) -> list[tuple[_Object, float]]:
    """One single-objective SLO object per objective of a foreign composite, with its weight.

    Each keeps the composite's service, time window, budgeting method and labels; errors in it are
    reported under `<slo>.spec.objectives[i]`."""
    out = []
    spec = obj.spec
    for index, objective in enumerate(spec.get("objectives") or []):
        path = f"{obj.path}.spec.objectives[{index}]"
        if not isinstance(objective, dict):
            report.error(path, "must be a mapping")
            continue
        weight = _weight(objective, path, report)
        if weight is None:
            continue
        indicator = objective.get("indicator")
        indicator_name = indicator.get("metadata", {}).get("name") if isinstance(indicator, dict) else None
        label = (
            objective.get("displayName") or indicator_name or objective.get("indicatorRef") or str(index + 1)
        )
        name = slugify_name(f"{obj.name}-{label}")
        member_spec = {
            key: value for key, value in spec.items() if key in ("service", "timeWindow", "budgetingMethod")
        }
        for key in ("indicator", "indicatorRef"):
            if key in objective:
                member_spec[key] = objective[key]
        member_spec["objectives"] = [{k: v for k, v in objective.items() if k not in _MEMBER_KEYS}]
        metadata: dict[str, Any] = {"name": name}
        if objective.get("displayName"):
            metadata["displayName"] = objective["displayName"]
        if isinstance(obj.metadata.get("labels"), dict):
            metadata["labels"] = obj.metadata["labels"]
        out.append((_Object(path, "SLO", name, metadata, member_spec), weight))
    return out


def _weight(objective: dict[Any, Any], path: str, report: _Report) -> float | None:
    weight = objective.get("compositeWeight", 1)
    if not _is_number(weight) or not weight > 0:
        report.error(f"{path}.compositeWeight", f"must be a number > 0, got {_show(weight)}")
        return None
    return float(weight)


def weights_of(obj: _Object, report: _Report) -> list[float] | None:
    weights = []
    for index, objective in enumerate(obj.spec.get("objectives") or []):
        weight = _weight(
            objective if isinstance(objective, dict) else {}, f"{obj.path}.spec.objectives[{index}]", report
        )
        if weight is None:
            return None
        weights.append(weight)
    return weights


def weighted_objective(objectives: list[float], weights: list[float]) -> float:
    """The weights' average of the members' objectives (percent), rounded to 6 decimals."""
    total = sum((Decimal(repr(w)) for w in weights), Decimal(0))
    weighted = sum(
        (Decimal(repr(o)) * Decimal(repr(w)) for o, w in zip(objectives, weights, strict=True)), Decimal(0)
    )
    return float(round(weighted / total, 6))


def import_composite(
    obj: _Object, ctx: _Context, import_slo: Callable[[_Object, _Context], list[SloSpec]]
) -> tuple[list[SloSpec], dict[str, Any] | None]:
    """(member SLO specs to import, the composite document) of one composite SLO object; the
    document is None when the object has errors (reported)."""
    report = ctx.report
    errors_before = len(report.errors)
    spec, spec_path = obj.spec, f"{obj.path}.spec"
    service = spec.get("service")
    if not isinstance(service, str) or not service:
        report.error(f"{spec_path}.service", "required: the service the composite belongs to")
        return [], None
    window, _window_labels = _time_window(spec.get("timeWindow"), f"{spec_path}.timeWindow", report)
    if spec.get("alertPolicies"):
        report.drop(
            f"{spec_path}.alertPolicies", "alert policies not imported: a composite alerts by its tiers"
        )
    objectives = spec.get("objectives") or []
    extension = composite_extension(obj, report)
    specs: list[SloSpec] = []
    members: list[dict[str, Any]] = []
    document: dict[str, Any] = {}
    if extension is not None:
        weights = weights_of(obj, report)
        refs = extension["members"]
        if weights is not None and len(refs) != len(weights):
            report.error(
                f"{obj.path}.metadata.annotations.{ANNOTATION_COMPOSITE}",
                f"lists {len(refs)} members for {len(weights)} objectives",
            )
        elif weights is not None:
            for index, (ref, weight) in enumerate(zip(refs, weights, strict=True)):
                members.append({"slo": ref, "weight": weight})
                report.drop(
                    f"{spec_path}.objectives[{index}]",
                    f"member SLO {_show(ref)} is referenced, not re-imported (its indicator and target come "
                    "from that SLO): change it through its own SLO file",
                )
        document = {
            key: extension[key]
            for key in ("objective", "aggregation", "min_valid_events", "alert_tiers")
            if key in extension
        }
    else:
        parts = member_objects(obj, report)
        for member, weight in parts:
            imported = import_slo(member, ctx)
            specs += imported
            if len(imported) == 1:
                members.append({"slo": f"{imported[0].service}/{imported[0].name}", "weight": weight})
        if len(members) == len(objectives) and members:
            objective = weighted_objective([s.objective for s in specs], [m["weight"] for m in members])
            document = {"objective": objective, "aggregation": "weighted_average"}
            report.drop(
                f"{spec_path}.objectives",
                f"OpenSLO v1 has no composite objective: set to {objective}%, the weights' average of the "
                "members' targets (met when every member meets its own); each objective is imported as a "
                "member SLO",
            )
    if len(report.errors) > errors_before or window is None:
        return specs, None
    display_name = obj.metadata.get("displayName")
    document.update(
        {
            "name": slugify_name(obj.name),
            "service": slugify_name(service),
            "display_name": display_name if isinstance(display_name, str) else "",
            "description": spec.get("description") if isinstance(spec.get("description"), str) else "",
            "window": window,
            "members": members,
        }
    )
    parsed, problems = parse_composite_spec(document)
    if parsed is None:
        for problem in problems:
            report.error(obj.path, f"{problem.path}: {problem.message}")
        return specs, None
    return specs, parsed.model_dump(mode="json", exclude_none=True)


NOT_EXPRESSIBLE = (
    "OpenSLO v1 cannot express: the composite's own objective, the aggregation "
    "(weighted_average / least_healthy), min_valid_events and alert tiers; they are in the annotation "
    f"{ANNOTATION_COMPOSITE}. Each objective is a member SLO: its indicator, its own target and its "
    "compositeWeight."
)


def export_composite(
    composite: dict[str, Any], member_documents: list[dict[str, Any] | None]
) -> dict[str, Any]:
    """The OpenSLO v1 composite document of a composite spec (a `CompositeSpec` dump), one objective
    per member from that member's exported SLO document (its indicator inline and its target); a
    member without a document keeps only its name and weight."""
    objectives = []
    for member, document in zip(composite["members"], member_documents, strict=True):
        objective: dict[str, Any] = {"displayName": member["slo"]}
        if document is not None:
            exported = dict(document["spec"]["objectives"][0])
            display_name = (document.get("metadata") or {}).get("displayName")
            objective = {**exported, "displayName": display_name or member["slo"]}
            if document["spec"].get("budgetingMethod", "Occurrences") != "Occurrences":
                objective.setdefault("timeSliceWindow", "1m")
            objective["compositeWeight"] = member["weight"]
            objective["indicator"] = document["spec"]["indicator"]
        else:
            objective["compositeWeight"] = member["weight"]
        objectives.append(objective)
    window = composite["window"]
    time_window: dict[str, Any]
    if window.get("type", "rolling") == "rolling":
        time_window = {"duration": f"{window['days']}d", "isRolling": True}
    else:
        time_window = {
            "duration": "1w" if window["unit"] == "week" else "1M",
            "isRolling": False,
            "calendar": {
                "startTime": window.get("start") or DEFAULT_CALENDAR_START,
                "timeZone": window.get("timezone", "UTC"),
            },
        }
    extension: dict[str, Any] = {
        "objective": composite["objective"],
        "aggregation": composite.get("aggregation", "weighted_average"),
        "members": [m["slo"] for m in composite["members"]],
        "min_valid_events": composite.get("min_valid_events", 1),
    }
    if composite.get("alert_tiers") is not None:
        extension["alert_tiers"] = composite["alert_tiers"]
    metadata: dict[str, Any] = {"name": composite["name"]}
    if composite.get("display_name"):
        metadata["displayName"] = composite["display_name"]
    if composite.get("labels"):
        metadata["labels"] = dict(composite["labels"])
    metadata["annotations"] = {ANNOTATION_COMPOSITE: json.dumps(extension, sort_keys=True)}
    body: dict[str, Any] = {}
    if composite.get("description"):
        body["description"] = composite["description"]
    body.update(
        {
            "service": composite["service"],
            "timeWindow": [time_window],
            "budgetingMethod": "Occurrences",
            "objectives": objectives,
        }
    )
    return {"apiVersion": API_VERSION, "kind": "SLO", "metadata": metadata, "spec": body}
