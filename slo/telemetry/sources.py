"""Prometheus sources (configuration): create, update and delete, audited; the secret is stored
encrypted and never returned or audited, only whether it is set. Pulling them is `slo.telemetry.pull`.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.crypto import SecretUnreadable, decrypt_secret, encrypt_secret
from controlplane.errors import NotFound, ValidationFailed
from slo.models import Service
from slo.models.telemetry import SliFeed, TelemetrySource
from slo.spec import Problem
from slo.telemetry.spans import feeds_retire
from slo.telemetry.spec import parse_source_spec


def source_document(source: TelemetrySource) -> dict[str, Any]:
    """The audited and returned configuration of a source: never the secret, only whether it is set."""
    return {
        "name": source.name,
        "url": source.url,
        "tier": source.tier,
        "region": source.region,
        "services": source.services,
        "auth_kind": source.auth_kind,
        "username": source.username,
        "has_secret": bool(source.secret_encrypted),
        "headers": masked_headers(source),
        "verify_tls": source.verify_tls,
        "timeout_s": source.timeout_s,
        "scrape_lag_s": source.scrape_lag_s,
        "backfill_minutes": source.backfill_minutes,
        "enabled": source.enabled,
    }


def source_headers(source: TelemetrySource) -> dict[str, str]:
    """The stored extra request headers, decrypted (raises SecretUnreadable after a key change)."""
    if not source.headers_encrypted:
        return {}
    return dict(json.loads(decrypt_secret(source.headers_encrypted)))


def masked_headers(source: TelemetrySource) -> dict[str, str]:
    """Header names with their values cut to 2 characters: enough to tell tenants apart, never a key."""
    try:
        headers = source_headers(source)
    except SecretUnreadable:
        return {}
    return {name: value[:2] + "***" for name, value in sorted(headers.items())}


_SPEC_FIELDS = (
    "name",
    "url",
    "tier",
    "region",
    "services",
    "auth_kind",
    "username",
    "verify_tls",
    "timeout_s",
    "scrape_lag_s",
    "backfill_minutes",
    "enabled",
)


def _validated(
    data: dict[str, Any], *, stored_secret: str, stored_headers: str = ""
) -> tuple[dict[str, Any], str]:
    """(fields with headers_encrypted, encrypted secret) or ValidationFailed."""
    spec, problems = parse_source_spec(data)
    if spec is None:
        raise ValidationFailed("invalid telemetry source", problems=problems)
    fields = {name: getattr(spec, name) for name in _SPEC_FIELDS}
    if spec.headers is None:
        fields["headers_encrypted"] = stored_headers
    else:
        fields["headers_encrypted"] = encrypt_secret(json.dumps(spec.headers)) if spec.headers else ""
    if spec.auth_kind == "none":
        encrypted = ""
    elif spec.secret is not None:
        encrypted = encrypt_secret(spec.secret) if spec.secret else ""
    else:
        encrypted = stored_secret
    if spec.auth_kind != "none" and not encrypted:
        raise ValidationFailed(
            "invalid telemetry source", problems=[Problem("secret", f"{spec.auth_kind} auth needs a secret")]
        )
    unknown = sorted(
        set(spec.services)
        - set(Service.objects.filter(name__in=spec.services).values_list("name", flat=True))
    )
    if unknown:
        raise ValidationFailed(
            "invalid telemetry source", problems=[Problem("services", f"unknown services {unknown}")]
        )
    return fields, encrypted


def telemetry_source_create(*, actor: Any, data: dict[str, Any]) -> TelemetrySource:
    fields, encrypted = _validated(data, stored_secret="")
    try:
        with transaction.atomic():
            source = TelemetrySource.objects.create(**fields, secret_encrypted=encrypted)
            audit_record(actor=actor, action="create", obj=source, after=source_document(source))
    except IntegrityError:
        raise ValidationFailed(
            "invalid telemetry source", problems=[Problem("name", "a source with this name exists")]
        ) from None
    return source


def telemetry_source_update(*, actor: Any, source_id: int, data: dict[str, Any]) -> TelemetrySource:
    """Change a source (fields not sent keep their value; `secret` not sent keeps the stored one)."""
    try:
        with transaction.atomic():
            source = TelemetrySource.objects.select_for_update().filter(pk=source_id).first()
            if source is None:
                raise NotFound("no such telemetry source")
            before = source_document(source)
            current = {k: v for k, v in before.items() if k not in ("has_secret", "headers")}
            fields, encrypted = _validated(
                {**current, **data},
                stored_secret=source.secret_encrypted,
                stored_headers=source.headers_encrypted,
            )
            for name, value in fields.items():
                setattr(source, name, value)
            source.secret_encrypted = encrypted
            source.updated_at = timezone.now()
            source.save()
            if not source.enabled:
                feeds_retire(SliFeed.objects.filter(source=source.source_key), timezone.now())
            after = source_document(source)
            if data.get("secret") is not None:
                after["secret_changed"] = True
            if data.get("headers") is not None:
                after["headers_changed"] = True
            audit_record(actor=actor, action="update", obj=source, before=before, after=after)
    except IntegrityError:
        raise ValidationFailed(
            "invalid telemetry source", problems=[Problem("name", "a source with this name exists")]
        ) from None
    return source


def telemetry_source_delete(*, actor: Any, source_id: int) -> None:
    """Delete a source; its stored minutes stay (history), its feeds stop expecting new ones."""
    with transaction.atomic():
        source = TelemetrySource.objects.select_for_update().filter(pk=source_id).first()
        if source is None:
            raise NotFound("no such telemetry source")
        feeds_retire(SliFeed.objects.filter(source=source.source_key), timezone.now())
        audit_record(actor=actor, action="delete", obj=source, before=source_document(source))
        source.delete()
