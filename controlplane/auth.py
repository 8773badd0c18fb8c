"""API authentication: personal bearer tokens, and browser sessions with CSRF."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from controlplane.models.tokens import TOKEN_PREFIX, ApiToken, hash_token
from controlplane.throttling import bearer_refused


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
        if not raw.startswith(TOKEN_PREFIX):
            # not a guess at a user token (a gateway's or Alertmanager's credential, or junk): nothing
            # was looked up, so nothing is counted
            raise exceptions.AuthenticationFailed("invalid, expired or revoked token")
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
        if token is None or not token.is_active or not token.user.is_active:
            # Never log the value. A valid token is checked before any failure count: only
            # refusals are counted, so others' failures never lock a valid token out.
            raise bearer_refused(request, "invalid, expired or revoked token")
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
