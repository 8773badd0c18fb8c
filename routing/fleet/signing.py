"""HMAC-SHA256 signatures for config pushes (pure: the reference gateway uses it too).

The signed message is `"{timestamp}.{body}"`, as Stripe does, so a captured body cannot be replayed
with a fresh timestamp. The header is `X-Signature: t=<unix seconds>,v1=<hex>`. Receivers reject
timestamps outside a 300 s tolerance and compare in constant time.

During a secret rotation's grace window the header carries one `v1=` per secret, new first:
`t=<unix seconds>,v1=<hex under the new secret>,v1=<hex under the previous one>`. A receiver holds one
secret and accepts the push if any `v1` matches it, so gateways still configured with the old secret
and gateways already moved to the new one both verify the same push (as Stripe's rolled webhook
secrets do). Receivers that read only the first `v1` would reject pushes during a rotation: the
contract is "any", which parse_header/verify implement.
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


def sign(secret: str, body: bytes, *, timestamp: int, previous_secret: str | None = None) -> str:
    """The X-Signature header value for `body` sent at `timestamp` (unix seconds); with
    `previous_secret` (a rotation's grace window) a second `v1` under it follows the first."""
    header = f"t={timestamp},v1={_digest(secret, timestamp, body)}"
    if previous_secret:
        header += f",v1={_digest(previous_secret, timestamp, body)}"
    return header


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
    HMAC is computed, so old captures are useless even with a valid signature. Any one of several
    `v1` entries may match (rotation grace); each comparison is constant-time, and which entry
    matched says nothing about the secret.
    """
    timestamp, signatures = parse_header(header)
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(f"timestamp outside the {tolerance_s} s tolerance")
    expected = _digest(secret, timestamp, body)
    for candidate in signatures:
        if hmac.compare_digest(expected, candidate):
            return timestamp, candidate
    raise SignatureError("signature does not match")
