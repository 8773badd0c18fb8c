"""Writes for the gateway fleet. Each write is one transaction with its audit event.

Credentials are returned once (on register and rotate) and never stored in plain text: the gateway
token as a sha256 hash, the signing secret encrypted (the control plane must sign with it later).
The same holds for the previous credentials a rotation keeps during its grace window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.crypto import encrypt_secret
from controlplane.errors import NotFound, ValidationFailed
from controlplane.lib.signing import new_signing_secret
from routing.fleet import pollcache
from routing.fleet.adapters import clean_adapter
from routing.fleet.bundle import bundle_etag, bundle_problems, errors_only
from routing.fleet.credentials import (
    DEFAULT_ROTATION_GRACE_S,
    grace_seconds_problem,
    hash_gateway_token,
    new_gateway_token,
)
from routing.models.fleet import Delivery, Gateway, GatewayRevision
from slo.models import Service
from slo.spec import NAME_RE, TIERS, Problem

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = ("tier", "region", "labels", "push_url", "service")
PRIORITIES = {"normal": Delivery.PRIORITY_NORMAL, "rollback": Delivery.PRIORITY_ROLLBACK}


@dataclass
class GatewayCredentials:
    """Shown once, on register or rotate. `grace_expires_at`: until when the rotated-out credentials
    still work (None: not a rotation, or no grace window)."""

    gateway: Gateway
    token: str | None = None
    signing_secret: str | None = None
    grace_expires_at: datetime | None = None


def gateway_view(gateway: Gateway) -> dict[str, Any]:
    """The audit snapshot of a gateway; never includes a credential or its hash."""
    return {
        "id": gateway.pk,
        "name": gateway.name,
        "service": gateway.service.name if gateway.service_id else None,
        "tier": gateway.tier,
        "region": gateway.region,
        "labels": gateway.labels,
        "push_url": gateway.push_url,
        "token_hint": gateway.token_hint,
        "kind": gateway.kind,
        "adapter": gateway.adapter,
    }


def _clean(data: Mapping[str, Any], *, partial: bool) -> tuple[dict[str, Any], list[Problem]]:
    import re

    from django.core.exceptions import ValidationError as DjangoValidationError
    from django.core.validators import URLValidator

    problems: list[Problem] = []
    out: dict[str, Any] = {}
    allowed = {"name", "kind", "adapter", "adapter_secret", *EDITABLE_FIELDS}
    for key in sorted(set(data) - allowed):
        problems.append(Problem(key, "unknown field"))
    if "name" in data or not partial:
        name = data.get("name")
        if not isinstance(name, str) or not re.match(NAME_RE, name):
            problems.append(Problem("name", "required: lowercase letters, digits and dashes (max 63)"))
        else:
            out["name"] = name
    if "service" in data or not partial:
        ref = data.get("service")
        service = None
        if isinstance(ref, int) and not isinstance(ref, bool):
            service = Service.objects.filter(pk=ref).first()
        elif isinstance(ref, str) and ref:
            service = Service.objects.filter(name=ref).first()
        if service is None:
            problems.append(Problem("service", "unknown service"))
        else:
            out["service"] = service
    if "tier" in data or not partial:
        if data.get("tier") not in TIERS:
            problems.append(Problem("tier", f"one of {', '.join(TIERS)}"))
        else:
            out["tier"] = data["tier"]
    if "region" in data:
        region = data["region"]
        if not isinstance(region, str) or len(region) > 63:
            problems.append(Problem("region", "a string of at most 63 characters"))
        else:
            out["region"] = region.strip()
    if "labels" in data:
        labels = data["labels"]
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            problems.append(Problem("labels", "an object of string values"))
        else:
            out["labels"] = labels
    if "push_url" in data:
        url = data["push_url"] or ""
        if not isinstance(url, str):
            problems.append(Problem("push_url", "a URL or empty"))
        elif url:
            try:
                URLValidator(schemes=["http", "https"])(url)
            except DjangoValidationError:
                problems.append(Problem("push_url", "not a valid http(s) URL"))
            else:
                out["push_url"] = url
        else:
            out["push_url"] = ""
    return out, problems


def gateway_register(*, actor: Any, data: Mapping[str, Any]) -> GatewayCredentials:
    """Register a gateway; returns it with its token and signing secret (shown this once)."""
    fields, problems = _clean(data, partial=False)
    adapter_fields, adapter_problems = clean_adapter(data, partial=False)
    fields.update(adapter_fields)
    problems += adapter_problems
    if problems:
        raise ValidationFailed("invalid gateway", problems=problems)
    token, secret = new_gateway_token(), new_signing_secret()
    try:
        with transaction.atomic():
            gateway = Gateway.objects.create(
                **fields,
                token_hash=hash_gateway_token(token),
                token_hint=token[:8],
                signing_secret_encrypted=encrypt_secret(secret),
            )
            audit_record(actor=actor, action="create", obj=gateway, after=gateway_view(gateway))
    except IntegrityError:
        raise ValidationFailed(
            "invalid gateway", problems=[Problem("name", "a gateway with this name exists")]
        ) from None
    return GatewayCredentials(gateway, token, secret)


def _locked(gateway_id: int) -> Gateway:
    gateway = Gateway.objects.select_for_update().select_related("service").filter(pk=gateway_id).first()
    if gateway is None:
        raise NotFound("no such gateway")
    return gateway


def gateway_update(*, actor: Any, gateway_id: int, data: Mapping[str, Any]) -> Gateway:
    """Edit tier, region, labels, push URL or service. The name is the gateway's identity: fixed."""
    if "name" in data:
        raise ValidationFailed("invalid gateway", problems=[Problem("name", "a gateway cannot be renamed")])
    fields, problems = _clean(data, partial=True)
    with transaction.atomic():
        gateway = _locked(gateway_id)
        adapter_fields, adapter_problems = clean_adapter(data, partial=True, current=gateway)
        fields.update(adapter_fields)
        problems += adapter_problems
        if problems:
            raise ValidationFailed("invalid gateway", problems=problems)
        before = gateway_view(gateway)
        for key, value in fields.items():
            setattr(gateway, key, value)
        gateway.updated_at = timezone.now()
        gateway.save()
        audit_record(actor=actor, action="update", obj=gateway, before=before, after=gateway_view(gateway))
    return gateway


def gateway_rotate(
    *,
    actor: Any,
    gateway_id: int,
    token: bool = True,
    signing_secret: bool = True,
    grace_seconds: int = DEFAULT_ROTATION_GRACE_S,
    now: datetime | None = None,
) -> GatewayCredentials:
    """Replace the gateway token and/or signing secret; the new values are returned this once.

    For `grace_seconds` after `now` the credential being replaced keeps working: the old token still
    authenticates, and pushes are signed under the old secret as well as the new one, so the gateway
    can be reconfigured without an outage. `grace_seconds=0` retires it at once (a leaked credential).
    There is one previous credential of each kind at most: rotating again within the window retires
    the one from the earlier rotation immediately and keeps the one being rotated out now.
    """
    if not token and not signing_secret:
        raise ValidationFailed(
            "nothing to rotate", problems=[Problem("", "rotate the token, the secret or both")]
        )
    problem = grace_seconds_problem(grace_seconds)
    if problem:
        raise ValidationFailed("invalid rotation", problems=[Problem("grace_seconds", problem)])
    now = now or timezone.now()
    grace_expires_at = now + timedelta(seconds=grace_seconds) if grace_seconds else None
    new_token = new_gateway_token() if token else None
    new_secret = new_signing_secret() if signing_secret else None
    with transaction.atomic():
        gateway = _locked(gateway_id)
        before = gateway_view(gateway)
        if new_token is not None:
            # The old token's hash (never the token) is what the grace window keeps.
            gateway.previous_token_hash = gateway.token_hash if grace_expires_at else ""
            gateway.previous_token_expires_at = grace_expires_at
            gateway.previous_token_last_used_at = None
            gateway.token_hash = hash_gateway_token(new_token)
            gateway.token_hint = new_token[:8]
        if new_secret is not None:
            gateway.previous_signing_secret_encrypted = (
                gateway.signing_secret_encrypted if grace_expires_at else ""
            )
            gateway.previous_signing_secret_expires_at = grace_expires_at
            gateway.signing_secret_encrypted = encrypt_secret(new_secret)
        _clear_expired_previous(gateway, now)
        gateway.updated_at = now
        gateway.save()
        rotated = [name for name, done in (("token", token), ("signing_secret", signing_secret)) if done]
        grace_note = (
            f"previous valid until {grace_expires_at.isoformat()}" if grace_expires_at else "no grace window"
        )
        audit_record(
            actor=actor,
            action="rotate_credentials",
            obj=gateway,
            before=before,
            after={
                **gateway_view(gateway),
                "rotated": rotated,
                "grace_seconds": grace_seconds,
                "grace_expires_at": grace_expires_at,
            },
            note="rotated: " + ", ".join(rotated) + "; " + grace_note,
        )
    return GatewayCredentials(gateway, new_token, new_secret, grace_expires_at)


PREVIOUS_TOKEN_USE_RESOLUTION = timedelta(seconds=60)


def previous_token_used(*, gateway_id: int, now: datetime, last_used_at: datetime | None) -> None:
    """Record that a gateway authenticated with its previous token (rotation grace): at most one
    conditional UPDATE a minute per gateway, however often it polls (`last_used_at` is the value the
    caller's read saw)."""
    if last_used_at is not None and now - last_used_at < PREVIOUS_TOKEN_USE_RESOLUTION:
        return
    Gateway.objects.filter(pk=gateway_id).filter(
        Q(previous_token_last_used_at__isnull=True)
        | Q(previous_token_last_used_at__lt=now - PREVIOUS_TOKEN_USE_RESOLUTION)
    ).update(previous_token_last_used_at=now)


def _clear_expired_previous(gateway: Gateway, now: datetime) -> None:
    """Drop previous credentials whose window has passed (housekeeping: readers check the expiry)."""
    if gateway.previous_token_expires_at is not None and gateway.previous_token_expires_at <= now:
        gateway.previous_token_hash = ""
        gateway.previous_token_expires_at = None
        gateway.previous_token_last_used_at = None
    if (
        gateway.previous_signing_secret_expires_at is not None
        and gateway.previous_signing_secret_expires_at <= now
    ):
        gateway.previous_signing_secret_encrypted = ""
        gateway.previous_signing_secret_expires_at = None


def _bundle_source(
    bundle_for: Callable[[Gateway], dict[str, Any]] | Mapping[Any, Any],
) -> Callable[[Gateway], Any]:
    if callable(bundle_for):
        return bundle_for
    if "routing_policy" in bundle_for or "cache_config" in bundle_for:
        return lambda gateway: bundle_for  # one bundle for every gateway
    # a mapping keyed by gateway id
    return lambda gateway: bundle_for.get(gateway.pk, bundle_for.get(str(gateway.pk)))


def gateway_set_desired(
    *,
    actor: Any,
    gateway_ids: Iterable[int],
    bundle_for: Callable[[Gateway], dict[str, Any]] | Mapping[Any, Any],
    reason: str,
    priority: str = "normal",
    release_id: int | None = None,
    validate: bool = True,
    now: datetime | None = None,
) -> list[GatewayRevision]:
    """Write a new desired revision per gateway and its delivery outbox row, in one transaction.

    `bundle_for` is a callable (gateway -> bundle), a mapping gateway id -> bundle, or one bundle
    for all. Each bundle gets the gateway's next revision number and service name. Pending
    deliveries of older revisions are superseded (a gateway only needs the newest); `rollback`
    priority puts the new deliveries ahead of everything else. With `validate`, a bundle whose
    policy or cache config has errors fails the whole call (nothing is written).
    """
    if priority not in PRIORITIES:
        raise ValidationFailed("invalid priority", problems=[Problem("priority", "normal or rollback")])
    now = now or timezone.now()
    ids = sorted(set(int(i) for i in gateway_ids))
    source = _bundle_source(bundle_for)
    actor_name = actor.get_username() if getattr(actor, "is_authenticated", False) else str(actor or "system")
    with transaction.atomic():
        # Lock in id order: two concurrent releases touching the same gateways cannot deadlock.
        gateways = list(
            Gateway.objects.select_for_update().select_related("service").filter(pk__in=ids).order_by("pk")
        )
        missing = sorted(set(ids) - {g.pk for g in gateways})
        if missing:
            raise NotFound(f"no such gateway: {', '.join(map(str, missing))}")
        problems: list[Problem] = []
        prepared: list[tuple[Gateway, int, dict[str, Any]]] = []
        checked: dict[tuple[int, str, bool], list[Problem]] = {}
        for gateway in gateways:
            raw = source(gateway)
            if not isinstance(raw, Mapping):
                problems.append(Problem(f"gateways[{gateway.pk}]", "no bundle given for this gateway"))
                continue
            revision = (gateway.desired_revision or 0) + 1
            bundle = {
                "revision": revision,
                "service": gateway.service.name,
                "routing_policy": raw.get("routing_policy"),
                "cache_config": raw.get("cache_config"),
                "model_version": raw.get("model_version"),
            }
            if validate:
                service = gateway.service
                # A release sends one bundle object to many gateways: validate it once per service
                # class (the raw mapping stays alive during the call, so its id is stable).
                key = (id(raw), service.service_class, service.multi_tenant)
                if key not in checked:
                    checked[key] = errors_only(
                        bundle_problems(
                            {**bundle, "revision": 1},
                            service_class=service.service_class,
                            multi_tenant=service.multi_tenant,
                        )
                    )
                for p in checked[key]:
                    problems.append(Problem(f"gateways[{gateway.pk}].{p.path}".rstrip("."), p.message))
            prepared.append((gateway, revision, bundle))
        if problems:
            raise ValidationFailed("invalid bundle", problems=problems)
        if not prepared:
            return []
        revisions = GatewayRevision.objects.bulk_create(
            [
                GatewayRevision(
                    gateway=gateway,
                    revision=revision,
                    bundle=bundle,
                    reason=(reason or "")[:300],
                    release_id=release_id,
                    rollback=priority == "rollback",
                    actor_name=actor_name[:150],
                    created_at=now,
                )
                for gateway, revision, bundle in prepared
            ]
        )
        touched = [gateway.pk for gateway, _, _ in prepared]
        # A gateway only ever needs its newest revision: older queued pushes are moot.
        Delivery.objects.filter(gateway_id__in=touched, state=Delivery.PENDING).update(
            state=Delivery.SUPERSEDED, finished_at=now, last_error="superseded by a newer revision"
        )
        Delivery.objects.bulk_create(
            [
                Delivery(
                    gateway_id=row.gateway_id,
                    revision=row,
                    priority=PRIORITIES[priority],
                    next_attempt_at=now,
                    created_at=now,
                )
                for row in revisions
            ]
        )
        by_revision: dict[int, list[int]] = {}
        for gateway, revision, _bundle in prepared:
            by_revision.setdefault(revision, []).append(gateway.pk)
        for revision, pks in by_revision.items():
            Gateway.objects.filter(pk__in=pks).update(desired_revision=revision, updated_at=now)
        pollcache.invalidate(
            touched
        )  # the next poll of each sees the new revision (queryset update: no signal)
        for gateway, revision, _bundle in prepared:
            previous = gateway.desired_revision
            gateway.desired_revision = revision
            audit_record(
                actor=actor,
                action="set_desired",
                obj=gateway,
                before={"desired_revision": previous},
                after={
                    "desired_revision": revision,
                    "etag": bundle_etag(revision),
                    "reason": reason,
                    "priority": priority,
                    "release_id": release_id,
                },
            )
        transaction.on_commit(_enqueue_dispatch)
    return revisions


def _enqueue_dispatch() -> None:
    """After commit: ask a worker to push now. If the broker is down, the periodic dispatcher
    still finds the pending rows, so this is an accelerator, not the only path."""
    try:
        from routing.tasks.delivery import dispatch_deliveries

        dispatch_deliveries.delay()
    except Exception:  # noqa: BLE001 - the outbox row is the source of truth
        logger.warning(
            "could not enqueue delivery dispatch; the periodic dispatcher will pick it up", exc_info=True
        )


# Revisions are stored in PositiveIntegerField columns (a 32-bit integer on PostgreSQL).
MAX_REVISION = 2**31 - 1


def _is_revision(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_REVISION


def heartbeat_record(*, gateway_id: int, data: Mapping[str, Any], now: datetime | None = None) -> int | None:
    """Record a heartbeat: applied revision, config etag, device health and an optional NACK; the
    open config pushes of the applied revision or older are done. Returns the desired revision.

    Heartbeats are not audited one by one (they are telemetry, not changes); a NACK reported here
    is, because it changes what the fleet view tells people. On PostgreSQL a heartbeat without a
    NACK is one statement (`routing.fleet.heartbeat`).
    """
    now = now or timezone.now()
    problems: list[Problem] = []
    applied = data.get("applied_revision")
    if applied is not None and not _is_revision(applied):
        problems.append(Problem("applied_revision", f"an integer from 0 to {MAX_REVISION}, or null"))
    etag = data.get("config_etag", "")
    if not isinstance(etag, str) or len(etag) > 40:
        problems.append(Problem("config_etag", "a string of at most 40 characters"))
    health = data.get("health", {})
    if not isinstance(health, dict) or len(str(health)) > 4000:
        problems.append(Problem("health", "an object (at most 4 KB)"))
    nack = data.get("nack")
    if nack is not None and not (
        isinstance(nack, dict)
        and _is_revision(nack.get("revision"))
        and isinstance(nack.get("error", ""), str)
    ):
        problems.append(
            Problem("nack", f"an object with revision (integer from 0 to {MAX_REVISION}) and error (string)")
        )
    if problems:
        raise ValidationFailed("invalid heartbeat", problems=problems)
    applied_etag = etag or (bundle_etag(applied) if applied is not None else "")
    if nack is None and connection.vendor == "postgresql":
        from routing.fleet.heartbeat import NoSuchGateway, heartbeat_write

        try:
            return heartbeat_write(
                gateway_id=gateway_id, applied=applied, applied_etag=applied_etag, health=health, now=now
            )
        except NoSuchGateway:
            raise NotFound("no such gateway") from None
    with transaction.atomic():
        gateway = _locked(gateway_id)
        gateway.last_heartbeat_at = now
        gateway.applied_revision = applied
        gateway.applied_etag = applied_etag
        gateway.device_health = health
        if nack is not None and nack["revision"] != gateway.last_nack_revision:
            _record_nack(gateway, nack["revision"], nack.get("error", ""), now, via="heartbeat")
        gateway.save(
            update_fields=[
                "last_heartbeat_at",
                "applied_revision",
                "applied_etag",
                "device_health",
                "last_nack_revision",
                "last_nack_error",
                "last_nack_at",
            ]
        )
        from routing.capacity.health import health_sample_record
        from routing.fleet.delivery import delivery_confirm_applied  # delivery imports this module

        if health:
            health_sample_record(gateway_id=gateway.pk, health=health, at=now)

        delivery_confirm_applied(gateway_id=gateway.pk, applied_revision=applied, now=now)
    return gateway.desired_revision


def _record_nack(gateway: Gateway, revision: int, error: str, now: datetime, *, via: str) -> None:
    before = {"last_nack_revision": gateway.last_nack_revision, "last_nack_error": gateway.last_nack_error}
    gateway.last_nack_revision = revision
    gateway.last_nack_error = error[:2000]
    gateway.last_nack_at = now
    audit_record(
        actor=f"gateway:{gateway.name}",
        action="nack",
        obj=gateway,
        before=before,
        after={"last_nack_revision": revision, "last_nack_error": gateway.last_nack_error},
        note=f"via {via}",
    )
