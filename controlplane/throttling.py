"""Rate limits: per token (or session) on API use, and on failed credentials per client.

Counters live in the Django cache: set CACHE_URL to Redis when several web processes
serve traffic, or each process counts on its own.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from controlplane.models.tokens import ApiToken


class TokenRateThrottle(SimpleRateThrottle):
    """THROTTLE_TOKEN per API token (or per logged-in user for browser sessions)."""

    scope = "token"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiToken):
            ident = f"token:{request.auth.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


def client_ip(request: Any) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is trivially forged unless a trusted proxy sets it.
    meta = getattr(request, "META", {})
    return str(meta.get("REMOTE_ADDR") or "unknown")


class FailureLimiter:
    """Counts failed credential attempts per key in a fixed window (the `scope` rate).

    Guessers are slowed down without locking out the real user forever: the window expires.
    """

    def __init__(self, scope: str) -> None:
        self.scope = scope

    def _rate(self) -> tuple[int, int] | tuple[None, None]:
        rate = SimpleRateThrottle.THROTTLE_RATES.get(self.scope)
        if not rate:
            return None, None
        count, _, period = rate.partition("/")
        return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[:1]]

    def _key(self, ident: str) -> str:
        return f"failures:{self.scope}:{ident}"

    def retry_after(self, ident: str) -> float | None:
        """Seconds to wait when `ident` used up its failures, else None."""
        limit, window = self._rate()
        if limit is None:
            return None
        entry = cache.get(self._key(ident))
        if entry and entry["count"] >= limit:
            return max(1.0, entry["until"] - time.time())
        return None

    def record(self, ident: str) -> None:
        limit, window = self._rate()
        if limit is None:
            return
        key = self._key(ident)
        entry = cache.get(key)
        now = time.time()
        if not entry or entry["until"] <= now:
            entry = {"count": 0, "until": now + window}
        entry["count"] += 1
        cache.set(key, entry, timeout=int(entry["until"] - now) + 1)
