from __future__ import annotations

# Submodules register their models; import models from the submodule itself,
# e.g. `from slo.models.telemetry import SliMinute`.
from slo.models import apply, budget, composites, contexts, corrections, reports, telemetry  # noqa: F401
from slo.models.catalog import Service, Slo, SloVersion

__all__ = ["Service", "Slo", "SloVersion"]
