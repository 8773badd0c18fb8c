"""Writes for the cross-cutting core: API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import NotFound, ValidationFailed
from controlplane.models.tokens import ApiToken, hash_token, new_raw_token


def _token_view(token: ApiToken) -> dict[str, Any]:
    # Never includes the hash or the raw value.
    return {
        "id": token.pk,
        "user": token.user.get_username(),
        "name": token.name,
        "hint": token.hint,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


def api_token_create(
    *, actor: Any, user: Any, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the row and the raw token (shown once, never stored)."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("invalid token", problems=[{"path": "name", "message": "required"}])
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed(
            "invalid token", problems=[{"path": "expires_at", "message": "must be in the future"}]
        )
    raw = new_raw_token()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100], hint=raw[:10], key_hash=hash_token(raw), expires_at=expires_at
        )
        audit_record(actor=actor, action="create", obj=token, after=_token_view(token))
    return token, raw


def api_token_revoke(*, actor: Any, token_id: int, owner: Any | None) -> ApiToken:
    """Revoke a token. `owner` limits the lookup to that user's tokens (None: any, for admins)."""
    with transaction.atomic():
        queryset = ApiToken.objects.select_for_update().select_related("user")
        if owner is not None:
            queryset = queryset.filter(user=owner)
        token = queryset.filter(pk=token_id).first()
        if token is None:
            raise NotFound("no such token")
        if token.revoked_at is None:
            before = _token_view(token)
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit_record(actor=actor, action="revoke", obj=token, before=before, after=_token_view(token))
    return token
