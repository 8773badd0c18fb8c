"""Rate limits: per token (or session) on API use, and on failed credentials.

Failed credentials are counted in separate buckets, each a fixed window of THROTTLE_LOGIN:
- passwords (`/login/`, `/admin/login/`): per client address and per account, or per device for a
  browser that signed in to that account before (controlplane.login);
- bearer credentials (user tokens, `gw_` gateway tokens, `amw_` Alertmanager secrets): per client
  address. A valid one is always accepted, whatever its address's count: tokens are random
  (256 bits), so guessing is hopeless anyway, and refusing them would let anyone behind the same
  proxy lock a fleet out with ten bad requests. Past the limit a bad one gets 429, not 401.

Counters live in the Django cache: set CACHE_URL to Redis when several web processes
serve traffic, or each process counts on its own.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from controlplane.models.tokens import ApiToken

logger = logging.getLogger(__name__)


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
    """The client's address: REMOTE_ADDR, unless TRUSTED_PROXY_COUNT proxies stand in front.

    Each proxy appends the address it saw to TRUSTED_PROXY_HEADER (X-Forwarded-For), so the
    entry TRUSTED_PROXY_COUNT from the right was written by the outermost trusted proxy; anything
    left of it came from the client and may be forged."""
    meta = getattr(request, "META", {})
    remote = str(meta.get("REMOTE_ADDR") or "unknown")
    count = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if count <= 0:
        return remote
    header = "HTTP_" + str(getattr(settings, "TRUSTED_PROXY_HEADER", "X-Forwarded-For")).upper().replace(
        "-", "_"
    )
    entries = [entry.strip() for entry in str(meta.get(header, "")).split(",") if entry.strip()]
    if not entries:
        return remote
    candidate = entries[-count] if len(entries) >= count else entries[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


class FailureLimiter:
    """Counts failed credential attempts per key in a fixed window (the `scope` rate).

    Guessers are slowed down without locking out the real user forever: the window expires.
    Counting is an atomic increment, so concurrent guesses in several processes all count.
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
        # hashed: idents carry usernames and addresses, which need not be valid cache keys
        return f"failures:{self.scope}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}"

    def retry_after(self, ident: str) -> float | None:
        """Seconds to wait when `ident` used up its failures, else None."""
        limit, _window = self._rate()
        if limit is None:
            return None
        key = self._key(ident)
        if (cache.get(key) or 0) < limit:
            return None
        until = cache.get(f"{key}:until") or time.time() + 1
        return max(1.0, until - time.time())

    def record(self, ident: str) -> int:
        """Count one failure; returns the count in this window."""
        limit, window = self._rate()
        if limit is None:
            return 0
        key = self._key(ident)
        if cache.add(key, 0, timeout=window):  # the first failure opens the window
            cache.set(f"{key}:until", time.time() + window, timeout=window)
        try:
            return int(cache.incr(key))
        except ValueError:  # the window closed between add and incr
            cache.set(key, 1, timeout=window)
            return 1


_bearer_failures = FailureLimiter("login")


def bearer_refused(request: Any, message: str) -> exceptions.APIException:
    """The error for a refused bearer credential, counted against the client's address: 401 for
    the first THROTTLE_LOGIN failures of a window, 429 with Retry-After after that. Only refusals
    count, so a valid credential is never slowed by someone else's failures."""
    ident = f"bearer:{client_ip(request)}"
    wait = _bearer_failures.retry_after(ident)
    count = _bearer_failures.record(ident)
    if wait is None:
        return exceptions.AuthenticationFailed(message)
    limit, _ = _bearer_failures._rate()
    if count == (limit or 0) + 1:  # once per window: the first refusal past the limit
        logger.warning("bearer credentials: %s failures from %s in this window", count, client_ip(request))
    return exceptions.Throttled(wait=wait, detail="too many failed authentication attempts")
