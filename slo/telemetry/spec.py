"""A telemetry source (a Prometheus endpoint) as the API accepts it (pure: no Django)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from slo.prom import request_headers
from slo.spec import NAME_RE, Problem, Tier, problems_from_validation_error


class TelemetrySourceSpec(BaseModel):
    """`secret` is the bearer token or the basic-auth password; write-only. On update, leaving it
    out keeps the stored one; an empty string clears it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(pattern=NAME_RE)]
    url: Annotated[str, Field(max_length=500)]
    tier: Tier
    region: Annotated[str, Field(max_length=63)] = ""
    services: list[Annotated[str, Field(pattern=NAME_RE)]] = Field(default_factory=list)
    auth_kind: Literal["none", "bearer", "basic"] = "none"
    username: Annotated[str, Field(max_length=200)] = ""
    secret: Annotated[str, Field(max_length=4096)] | None = None
    # extra request headers, e.g. {"X-Scope-OrgID": "team-a"}; write-only like the secret: on
    # update, leaving it out keeps the stored ones, {} clears them
    headers: Annotated[dict[str, Annotated[str, Field(max_length=1024)]], Field(max_length=10)] | None = None
    verify_tls: bool = True
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 30
    scrape_lag_s: Annotated[int, Field(ge=0, le=3600)] = 120
    backfill_minutes: Annotated[int, Field(ge=0, le=60 * 24 * 8)] = 1440
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("put credentials in auth_kind/username/secret, not in the URL")
        return value.rstrip("/")


def parse_source_spec(data: Any) -> tuple[TelemetrySourceSpec | None, list[Problem]]:
    if not isinstance(data, dict):
        return None, [Problem("", "must be an object")]
    try:
        spec = TelemetrySourceSpec.model_validate(data)
    except ValidationError as exc:
        return None, problems_from_validation_error(exc)
    problems = []
    if spec.auth_kind == "basic" and not spec.username:
        problems.append(Problem("username", "basic auth needs a username"))
    if spec.auth_kind != "basic" and spec.username:
        problems.append(Problem("username", "only applies to basic auth"))
    if len(set(spec.services)) != len(spec.services):
        problems.append(Problem("services", "must not repeat"))
    for name, value in (spec.headers or {}).items():
        try:
            request_headers({name: value})
        except ValueError as exc:
            problems.append(Problem(f"headers.{name}", str(exc)))
    return (None, problems) if problems else (spec, [])
