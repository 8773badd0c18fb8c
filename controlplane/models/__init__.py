from __future__ import annotations

from controlplane.models.audit import AuditEvent
from controlplane.models.tokens import ApiToken

__all__ = ["ApiToken", "AuditEvent"]
