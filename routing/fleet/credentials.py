"""Gateway credentials: the token a gateway presents (stored hashed) and the signing secret."""

from __future__ import annotations

import hashlib
import secrets

GATEWAY_TOKEN_PREFIX = "gw_"


def new_gateway_token() -> str:
    return GATEWAY_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_gateway_token(raw: str) -> str:
    # 256 random bits: a fast hash is enough (no dictionary to attack) and lookups stay one
    # indexed equality, which the config poll's 304 path depends on.
    return hashlib.sha256(raw.encode()).hexdigest()
