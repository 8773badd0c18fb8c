"""Gateway credentials: the token a gateway presents (stored hashed) and the signing secret.

Rotation has a grace window: the credential being rotated out keeps working until it expires, so a
running fleet can be reconfigured without an outage (see routing.fleet.services.gateway_rotate).
"""

from __future__ import annotations

import hashlib
import secrets

GATEWAY_TOKEN_PREFIX = "gw_"

# One hour: long enough to roll new credentials out to a site by hand or by config management, short
# enough that a credential someone meant to retire does not linger for a day.
DEFAULT_ROTATION_GRACE_S = 3600
# A week bounds how long a retired credential can stay valid, whatever the caller asks for.
MAX_ROTATION_GRACE_S = 7 * 24 * 3600


def new_gateway_token() -> str:
    return GATEWAY_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_gateway_token(raw: str) -> str:
    # 256 random bits: a fast hash is enough (no dictionary to attack) and lookups stay one
    # indexed equality, which the config poll's 304 path depends on.
    return hashlib.sha256(raw.encode()).hexdigest()


def grace_seconds_problem(value: object) -> str | None:
    """Why `value` is not a valid rotation grace window, or None when it is (pure, shared by the
    service and the API so both say the same thing)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be an integer number of seconds"
    if value < 0:
        return "must be 0 (no overlap) or more"
    if value > MAX_ROTATION_GRACE_S:
        return f"must be at most {MAX_ROTATION_GRACE_S} (7 days)"
    return None
