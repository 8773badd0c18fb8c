"""HMAC-SHA256 signatures for config pushes (pure: the reference gateway uses it too).

The signed message is `"{timestamp}.{body}"`, as Stripe does, so a captured body cannot be replayed
with a fresh timestamp. The header is `X-Signature: t=<unix seconds>,v1=<hex>`. Receivers reject
timestamps outside a 300 s tolerance and compare in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Signature"
TOLERANCE_S = 300


class SignatureError(Exception):
    """The signature header is missing, malformed, too old, or does not match."""


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The X-Signature header value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures). Several v1 entries are allowed (secret rotation)."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("malformed timestamp") from None
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("missing t= or v1= in signature header")
    return timestamp, signatures


def verify(secret: str, body: bytes, header: str, *, now: float, tolerance_s: int = TOLERANCE_S) -> tuple[int, str]:
    """Check a signature header; returns (timestamp, matching signature) or raises SignatureError.

    A timestamp too far in the past (or future: clock skew works both ways) is refused before the
    HMAC is computed, so old captures are useless even with a valid signature.
    """
    timestamp, signatures = parse_header(header)
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(f"timestamp outside the {tolerance_s} s tolerance")
    expected = _digest(secret, timestamp, body)
    for candidate in signatures:
        if hmac.compare_digest(expected, candidate):
            return timestamp, candidate
    raise SignatureError("signature does not match")
