"""A composite SLO as OpenSLO v1 (the document itself is built by the pure
`slo.openslo.composites.export_composite`; see there and docs/composites.md for what v1 cannot say)."""

from __future__ import annotations

from typing import Any

import yaml

from slo.models import Slo
from slo.models.composites import Composite, CompositeMember
from slo.openslo.composites import NOT_EXPRESSIBLE, export_composite


def composite_openslo_document(composite: Composite) -> dict[str, Any]:
    """The OpenSLO v1 composite SLO document of `composite` (members' indicators inline)."""
    from slo.interop import openslo_export_text

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
    return export_composite(composite.spec, list(exported))


def composite_openslo_text(composite: Composite) -> str:
    """The document as YAML, with a comment saying what OpenSLO v1 cannot express."""
    document = composite_openslo_document(composite)
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, explicit_start=True, width=120)
    return f"# {NOT_EXPRESSIBLE}\n{text}"
