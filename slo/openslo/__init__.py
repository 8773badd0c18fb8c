"""OpenSLO v1 import and export for SLO specs (pure: no Django).

`import_openslo` reads a multi-document YAML string and never raises: what it cannot import becomes an
error problem (with a path into the OpenSLO document, e.g. `documents[2].spec.timeWindow[0].duration`)
and what it parses but cannot express becomes a warning in `unsupported`; nothing is dropped silently.
`export_openslo` writes SloSpecs (and optional services) back as OpenSLO v1 documents.

Two kinds of bookkeeping make the round trip (OpenSLO -> spec -> OpenSLO -> spec) lossless where both
sides can express a thing:
- OpenSLO details our spec has no field for (the original name when slugify changed it, the indicator's
  name, the objective's displayName, a non-Prometheus source type, foreign annotations...) are kept in
  our `labels` under the reserved `openslo.` prefix, and only when they differ from what the exporter
  would write by default; the exporter consumes them instead of writing them as OpenSLO labels.
- Our fields OpenSLO has no field for (tier, min_valid_events, alert_tiers, a native SLI kind) go into
  `metadata.annotations` under `inference-slo-controlplane/`, which the importer reads back.
The mapping table is in docs/openslo.md.
"""

from __future__ import annotations

from slo.openslo import mapping
from slo.openslo.exporter import export_openslo, export_openslo_with_report
from slo.openslo.importer import import_openslo
from slo.openslo.mapping import *  # noqa: F403 - the public names are mapping.__all__

__all__ = [*mapping.__all__, "export_openslo", "export_openslo_with_report", "import_openslo"]
