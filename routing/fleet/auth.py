"""Authentication of gateways (not people) on the gateway-facing endpoints.

A gateway sends `Authorization: Bearer gw_...`. User tokens (`slo_...`) are refused here: a person
must not be able to post telemetry or heartbeats in a gateway's name. The token identifies one
gateway; `IsPathGateway` then requires the URL's gateway id to be that gateway. During a rotation's
grace window the gateway's previous token is accepted too (routing.fleet.services.gateway_rotate).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from controlplane.throttling import bearer_refused
from routing.fleet.credentials import GATEWAY_TOKEN_PREFIX, hash_gateway_token
from routing.models.fleet import Gateway
from slo.models import Service
from slo.telemetry.sql import run_statements_fetch_each

_GATEWAY_TABLE = Gateway._meta.db_table
_SERVICE_TABLE = Service._meta.db_table


@dataclass
class GatewayPrincipal:
    """Stands in for request.user on gateway endpoints. `service`, `tier` and `region` are the
    gateway's registration: what it may report telemetry about (empty: nothing)."""

    gateway_id: int
    name: str
    desired_revision: int | None
    service: str = ""
    tier: str = ""
    region: str = ""
    # telemetry pushes: the SLOs a push may feed, read with the authentication (`reads_push_targets`)
    push_target_rows: list[tuple[Any, ...]] | None = None

    is_authenticated = True
    is_active = True

    @property
    def pk(self) -> str:
        # throttles key on request.user.pk: keep gateways apart from users (integers)
        return f"gateway-{self.gateway_id}"

    def get_username(self) -> str:
        return f"gateway:{self.name}"


def _raw_token(request: Request) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1")
    scheme, _, raw = header.partition(" ")
    if scheme not in ("Bearer", "Gateway") or not raw.strip():
        return None
    return raw.strip()


def token_matches(token_hash: str, *, now: datetime) -> Q:
    """Rows a token hash authenticates: the current token, or the previous one (a rotation's grace
    window) until it expires. After that the old token is as unknown as any other."""
    return Q(token_hash=token_hash) | Q(previous_token_hash=token_hash, previous_token_expires_at__gt=now)


class GatewayRead(NamedTuple):
    """What a gateway token authenticates (`gateway_read`)."""

    principal: GatewayPrincipal
    # the token is a rotation's previous one (within its grace window), last used then
    by_previous_token: bool
    previous_token_last_used_at: datetime | None


def gateway_read(token_hash: str, now: datetime, push_source_id: str = "") -> GatewayRead | None:
    """The gateway a token hash authenticates, in plain SQL (one round trip, PostgreSQL); None for
    an unknown token. With `push_source_id` (the URL's gateway id of a telemetry push), the same round
    trip also reads the SLOs a push from that gateway may feed (those of the token's gateway's
    service and those the source already feeds), which the push would read next anyway."""
    matches = "g.token_hash = %s OR (g.previous_token_hash = %s AND g.previous_token_expires_at > %s)"
    match_params = [token_hash, token_hash, now]
    statements = [
        (
            "SELECT g.id, g.name, g.desired_revision, g.token_hash, g.previous_token_last_used_at, "
            f"s.name, g.tier, g.region FROM {_GATEWAY_TABLE} g JOIN {_SERVICE_TABLE} s "
            f"ON s.id = g.service_id WHERE {matches} ORDER BY g.id LIMIT 1",
            match_params,
        )
    ]
    if push_source_id.isdigit():
        from slo.telemetry.ingest import push_targets_statement

        services = (f"SELECT g.service_id FROM {_GATEWAY_TABLE} g WHERE {matches}", match_params)
        statements.append(push_targets_statement(f"gateway:{int(push_source_id)}", services))
    results = run_statements_fetch_each(statements)
    if not results[0]:
        return None
    row = results[0][0]
    principal = GatewayPrincipal(*row[:3], service=row[5], tier=row[6], region=row[7])
    principal.push_target_rows = results[1] if len(results) > 1 else None
    return GatewayRead(principal, row[3] != token_hash, row[4])


def _orm_read(token_hash: str, now: datetime) -> GatewayRead | None:
    """`gateway_read` through the ORM, on any database (the embedded SQLite); no push targets."""
    row = (
        Gateway.objects.filter(token_matches(token_hash, now=now))
        .values_list(
            "pk",
            "name",
            "desired_revision",
            "token_hash",
            "previous_token_last_used_at",
            "service__name",
            "tier",
            "region",
        )
        .first()
    )
    if row is None:
        return None
    principal = GatewayPrincipal(*row[:3], service=row[5], tier=row[6], region=row[7])
    return GatewayRead(principal, row[3] != token_hash, row[4])


class GatewayTokenAuthentication(authentication.BaseAuthentication):
    """One indexed read: the token's hash -> the gateway's id, name, desired revision and
    registration (service, tier, region); on PostgreSQL `gateway_read`, which for a view with
    `reads_push_targets` (the telemetry push) also gets the SLOs its push may feed in the same round
    trip. Nothing is cached: a revoked or rotated token fails on its next request."""

    def authenticate(self, request: Request) -> tuple[GatewayPrincipal, None] | None:
        raw = _raw_token(request)
        if raw is None:
            return None
        if not raw.startswith(GATEWAY_TOKEN_PREFIX):
            # not counted as a guess: no gateway token was tried (a person's token is refused unread)
            raise exceptions.AuthenticationFailed("a gateway token is required here")
        token_hash, now = hash_gateway_token(raw), timezone.now()
        context = getattr(request, "parser_context", {})
        push_source_id = ""
        if getattr(context.get("view"), "reads_push_targets", False):
            push_source_id = str(context.get("kwargs", {}).get("pk", ""))
        read = (
            gateway_read(token_hash, now, push_source_id)
            if connection.vendor == "postgresql"
            else _orm_read(token_hash, now)
        )
        if read is None:  # counted per address; a valid token is never refused for others' failures
            raise bearer_refused(request, "invalid gateway token")
        if read.by_previous_token:  # within its grace window
            from routing.fleet.services import previous_token_used

            previous_token_used(
                gateway_id=read.principal.gateway_id, now=now, last_used_at=read.previous_token_last_used_at
            )
        return read.principal, None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="gateway"'


class IsPathGateway(permissions.BasePermission):
    """The authenticated gateway may only act as itself (the `pk` in the URL)."""

    message = "this token belongs to another gateway"

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, GatewayPrincipal):
            return False
        return str(principal.gateway_id) == str(view.kwargs.get("pk"))
