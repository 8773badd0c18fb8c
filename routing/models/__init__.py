from __future__ import annotations

# Submodules register their models; import models from the submodule itself.
from routing.models import capacity, decisions, documents, fleet, releases, responses  # noqa: F401
