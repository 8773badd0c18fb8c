"""HMAC-SHA256 request signing, written once for every sender and receiver (pure: the reference
gateway uses it too).

**Config pushes** (control plane -> gateway, and the gateway's verification). The signed message is `"{timestamp}.{body}"`, as Stripe does, so a captured body cannot be replayed
with a fresh timestamp. The header is `X-Signature: t=<unix seconds>,v1=<hex>`. Receivers reject
timestamps outside a 300 s tolerance and compare in constant time.

During a secret rotation's grace window the header carries one `v1=` per secret, new first:
`t=<unix seconds>,v1=<hex under the new secret>,v1=<hex under the previous one>`. A receiver holds one
secret and accepts the push if any `v1` matches it, so gateways still configured with the old secret
and gateways already moved to the new one both verify the same push (as Stripe's rolled webhook
secrets do). Receivers that read only the first `v1` would reject pushes during a rotation: the
contract is "any", which parse_header/verify implement.

**Outbound webhooks** (notifications) carry the same `X-Signature` and, in addition, the Standard
Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` over
`"{id}.{timestamp}.{body}"`), so receivers can verify with the ready-made Standard Webhooks libraries.
The key is the secret's base64 part when the secret is `whsec_<base64>` (as those libraries expect),
otherwise the secret's UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

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


def verify(
    secret: str, body: bytes, header: str, *, now: float, tolerance_s: int = TOLERANCE_S
) -> tuple[int, str]:
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


# -- Standard Webhooks ------------------------------------------------------------------------------

WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"


def _webhook_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def _webhook_digest(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    message = f"{message_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(_webhook_key(secret), message, hashlib.sha256).digest()).decode()


def standard_webhook_headers(secret: str, body: bytes, *, message_id: str, timestamp: int) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`; `message_id` is stable across retries so the
    receiver can deduplicate."""
    return {
        WEBHOOK_ID_HEADER: message_id,
        WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        WEBHOOK_SIGNATURE_HEADER: "v1," + _webhook_digest(secret, message_id, timestamp, body),
    }


def verify_standard_webhook(
    secret: str, body: bytes, headers: Mapping[str, str], *, now: float, tolerance_s: int = TOLERANCE_S
) -> None:
    """What a receiver does with the Standard Webhooks headers; raises SignatureError."""
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        message_id = lowered[WEBHOOK_ID_HEADER]
        timestamp = int(lowered[WEBHOOK_TIMESTAMP_HEADER])
        signatures = lowered[WEBHOOK_SIGNATURE_HEADER].split()
    except (KeyError, ValueError):
        raise SignatureError(
            "missing or malformed webhook-id, webhook-timestamp or webhook-signature"
        ) from None
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(f"timestamp outside the {tolerance_s} s tolerance")
    expected = _webhook_digest(secret, message_id, timestamp, body)
    for entry in signatures:
        version, _, candidate = entry.partition(",")
        if version == "v1" and hmac.compare_digest(expected, candidate):
            return
    raise SignatureError("signature does not match")
