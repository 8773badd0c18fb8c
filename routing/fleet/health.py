"""Gateway health, derived from what the control plane knows (pure)."""

from __future__ import annotations

from datetime import datetime

HEALTHY = "healthy"
STALE = "stale"  # no heartbeat for longer than stale_after_s (or never)
NACKED = "nacked"  # rejected its desired revision
DRIFTED = "drifted"  # runs something other than its desired revision
PENDING = "pending"  # registered, nothing desired yet and never seen
HEALTH_STATES = (HEALTHY, STALE, NACKED, DRIFTED, PENDING)

# Gateways heartbeat every 15 s by default: three missed beats mean something is wrong.
DEFAULT_STALE_AFTER_S = 60


def gateway_health(
    *,
    desired_revision: int | None,
    applied_revision: int | None,
    last_heartbeat_at: datetime | None,
    last_nack_revision: int | None,
    now: datetime,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
) -> str:
    """One word for the fleet view. A silent gateway is `stale` whatever it last said: its applied
    revision is an old claim. Otherwise a NACK of the desired revision beats plain drift, because
    re-sending will not help and a person must act."""
    if last_heartbeat_at is None:
        if desired_revision is None:
            return PENDING
        return STALE
    if (now - last_heartbeat_at).total_seconds() > stale_after_s:
        return STALE
    if desired_revision is None or applied_revision == desired_revision:
        return HEALTHY
    if last_nack_revision is not None and last_nack_revision == desired_revision:
        return NACKED
    return DRIFTED
