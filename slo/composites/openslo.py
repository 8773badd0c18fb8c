"""A composite SLO as OpenSLO v1.

OpenSLO v1 has a composite form: an SLO without a top-level indicator whose `objectives[]` each
carry their own `indicator` (or `indicatorRef`), `target` and `compositeWeight`. It maps onto our
weighted_average composite member by member (the member's SLI, objective and weight). What v1
cannot say is written in the annotation `inference-slo-controlplane/composite` (JSON), and listed
in a comment at the top of the file:

- the composite's own objective (v1 only has the members' targets);
- the aggregation (v1 defines no `least_healthy`);
- the members as SLOs of this control plane (`service/name`), the traffic floor and alert tiers.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from slo.composites.spec import CompositeSpec
from slo.models import Slo
from slo.models.composites import Composite, CompositeMember
from slo.openslo.mapping import ANNOTATION_PREFIX, API_VERSION, DEFAULT_CALENDAR_START

ANNOTATION_COMPOSITE = ANNOTATION_PREFIX + "composite"

NOT_EXPRESSIBLE = (
    "OpenSLO v1 cannot express: the composite's own objective, the aggregation "
    "(weighted_average / least_healthy), min_valid_events and alert tiers; they are in the annotation "
    f"{ANNOTATION_COMPOSITE}. Each objective is a member SLO: its indicator, its own target and its "
    "compositeWeight."
)


def composite_openslo_document(composite: Composite) -> dict[str, Any]:
    """The OpenSLO v1 composite SLO document of `composite` (members' indicators inline)."""
    from slo.interop import openslo_export_text

    spec = CompositeSpec.model_validate(composite.spec)
    rows = list(CompositeMember.objects.filter(composite=composite).order_by("position"))
    slos = {
        slo.pk: slo for slo in Slo.objects.filter(pk__in=[r.slo_id for r in rows]).select_related("service")
    }
    members = [slos[r.slo_id] for r in rows]
    exported = [
        doc
        for doc in yaml.safe_load_all(openslo_export_text(slos=members))
        if doc and doc.get("kind") == "SLO"
    ]
    objectives = []
    for member, slo, doc in zip(spec.members, members, exported, strict=True):
        objective = dict(doc["spec"]["objectives"][0])
        objective.pop("displayName", None)
        objectives.append(
            {
                "displayName": member.slo,
                **objective,
                "compositeWeight": member.weight,
                "indicator": doc["spec"]["indicator"],
            }
        )
        if slo.spec.get("budgeting_method", "occurrences") != "occurrences":
            objectives[-1]["timeSliceWindow"] = "1m"
    window: dict[str, Any]
    if spec.window.type == "rolling":
        window = {"duration": f"{spec.window.days}d", "isRolling": True}
    else:
        window = {
            "duration": "1w" if spec.window.unit == "week" else "1M",
            "isRolling": False,
            "calendar": {
                "startTime": spec.window.start or DEFAULT_CALENDAR_START,
                "timeZone": spec.window.timezone,
            },
        }
    extension: dict[str, Any] = {
        "objective": spec.objective,
        "aggregation": spec.aggregation,
        "members": [m.slo for m in spec.members],
        "min_valid_events": spec.min_valid_events,
    }
    if spec.alert_tiers is not None:
        extension["alert_tiers"] = [t.model_dump() for t in spec.alert_tiers]
    metadata: dict[str, Any] = {"name": spec.name}
    if spec.display_name:
        metadata["displayName"] = spec.display_name
    if spec.labels:
        metadata["labels"] = dict(spec.labels)
    metadata["annotations"] = {ANNOTATION_COMPOSITE: json.dumps(extension, sort_keys=True)}
    body: dict[str, Any] = {}
    if spec.description:
        body["description"] = spec.description
    body.update(
        {
            "service": spec.service,
            "timeWindow": [window],
            "budgetingMethod": "Occurrences",
            "objectives": objectives,
        }
    )
    return {"apiVersion": API_VERSION, "kind": "SLO", "metadata": metadata, "spec": body}


def composite_openslo_text(composite: Composite) -> str:
    """The document as YAML, with a comment saying what OpenSLO v1 cannot express."""
    document = composite_openslo_document(composite)
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, explicit_start=True, width=120)
    return f"# {NOT_EXPRESSIBLE}\n{text}"
