"""Pushing one signed bundle to one gateway and reading its answer (no Django: runs in threads).

The gateway answers (see docs/delivery.md):
    200 {"status": "ack", "applied_revision": N}
    422 {"status": "nack", "revision": N, "error": "..."}   keeps its previous config
    409 {"status": "stale", "applied_revision": M}         already runs M >= N
anything else (timeouts, refused connections, 5xx, 401 on a bad signature) is retried with backoff.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from controlplane.lib.signing import SIGNATURE_HEADER, sign

CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 5.0

_local = threading.local()


@dataclass(frozen=True)
class PushOutcome:
    """`kind` is ack, nack, stale or retry."""

    kind: str
    applied_revision: int | None = None
    error: str = ""


def _session() -> requests.Session:
    # requests.Session is not documented as thread-safe: one per pool thread, reused for keep-alive.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def classify(status_code: int, body: Any, revision: int) -> PushOutcome:
    """Turn a gateway's HTTP answer into an outcome (pure)."""
    data = body if isinstance(body, dict) else {}
    status = data.get("status")
    applied = data.get("applied_revision")
    applied = applied if isinstance(applied, int) and not isinstance(applied, bool) else None
    if status_code == 200 and status == "ack" and applied is not None:
        if applied == revision:
            return PushOutcome("ack", applied)
        return PushOutcome("retry", applied, f"gateway acknowledged revision {applied}, expected {revision}")
    if status_code == 422 and status == "nack":
        return PushOutcome("nack", None, str(data.get("error") or "rejected without a reason")[:2000])
    if status_code == 409 and status == "stale" and applied is not None and applied >= revision:
        return PushOutcome("stale", applied, f"gateway already runs revision {applied}")
    detail = str(data.get("error") or data.get("detail") or "")[:200]
    return PushOutcome("retry", applied, f"HTTP {status_code}" + (f": {detail}" if detail else ""))


def push_bundle(
    *,
    url: str,
    body: bytes,
    secret: str,
    revision: int,
    timestamp: float | None = None,
    previous_secret: str | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    read_timeout_s: float = READ_TIMEOUT_S,
) -> PushOutcome:
    """POST a signed bundle; never raises for network trouble (that is a `retry` outcome).
    `previous_secret` (during a rotation's grace window) adds a signature under the old secret."""
    signed_at = int(timestamp if timestamp is not None else time.time())
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, timestamp=signed_at, previous_secret=previous_secret),
    }
    try:
        response = _session().post(
            url, data=body, headers=headers, timeout=(connect_timeout_s, read_timeout_s)
        )
    except requests.RequestException as exc:
        # The exception text can hold the URL but never the secret (it is only in the HMAC).
        return PushOutcome("retry", None, f"{exc.__class__.__name__}: {str(exc)[:200]}")
    try:
        data = response.json()
    except ValueError:
        data = None
    return classify(response.status_code, data, revision)
