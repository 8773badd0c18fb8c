"""API authentication: personal bearer tokens, and browser sessions with CSRF."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from controlplane.models.tokens import TOKEN_PREFIX, ApiToken, hash_token
from controlplane.throttling import FailureLimiter, client_ip

# Failed bearer tokens count against the same budget as failed logins: both are guessing.
_failures = FailureLimiter("login")


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme != self.keyword:
            return None
        raw = raw.strip()
        ip = client_ip(request)
        wait = _failures.retry_after(f"ip:{ip}")
        if wait is not None:
            raise exceptions.Throttled(wait=wait, detail="too many failed authentication attempts")
        token = None
        if raw.startswith(TOKEN_PREFIX):
            token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
        if token is None or not token.is_active or not token.user.is_active:
            # Never log the value.
            _failures.record(f"ip:{ip}")
            raise exceptions.AuthenticationFailed("invalid, expired or revoked token")
        now = timezone.now()
        # Touch at most once a minute: a write per request would serialise API traffic.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        request.auth_kind = "token"
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """Browser sessions; DRF enforces CSRF for unsafe methods."""
