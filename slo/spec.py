"""The SLO document: a pure, framework-free definition of one SLO.

Every SLO version stores one of these as JSON. Validation returns problems as
values (a field path and a message) so the API can answer 400 and the CLI can
print readable lines; nothing here imports Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SERVICE_CLASSES = ("interactive", "near_real_time", "batch", "privacy_sensitive", "safety_critical")
TIERS = ("edge", "private_cloud", "public_cloud")
SLI_KINDS = (
    "latency",
    "ttft",
    "tpot",
    "availability",
    "fallback_success",
    "freshness",
    "correctness",
    "custom",
)
# SLI kinds judged on a latency histogram at threshold_ms: end-to-end request duration, time to
# first token and time per output token (docs/telemetry.md, "SLIs from the contract")
LATENCY_KINDS = ("latency", "ttft", "tpot")
BUDGETING_METHODS = ("occurrences", "timeslices", "ratio_timeslices")

NAME_RE = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"

Tier = Literal["edge", "private_cloud", "public_cloud"]
ServiceClass = Literal["interactive", "near_real_time", "batch", "privacy_sensitive", "safety_critical"]


@dataclass(frozen=True)
class Problem:
    """One validation problem: where (a dotted path) and why."""

    path: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "severity": self.severity}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Sli(_Strict):
    """What counts as a good event, and out of which valid events."""

    kind: Literal[
        "latency", "ttft", "tpot", "availability", "fallback_success", "freshness", "correctness", "custom"
    ]
    # latency: share of requests answered within threshold_ms; ttft: share of answers whose first
    # token came within threshold_ms; tpot: share of answers whose time per output token (after the
    # first) was within threshold_ms
    threshold_ms: Annotated[float, Field(gt=0)] | None = None
    # freshness: share of answers whose data is younger than max_age_s
    max_age_s: Annotated[float, Field(gt=0)] | None = None
    # custom: PromQL selectors of counters; good or bad, plus total
    good_query: str | None = None
    bad_query: str | None = None
    total_query: str | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> Sli:
        if self.kind in LATENCY_KINDS and self.threshold_ms is None:
            raise ValueError(f"a {self.kind} SLI needs threshold_ms")
        if self.kind not in LATENCY_KINDS and self.threshold_ms is not None:
            raise ValueError("threshold_ms only applies to latency, ttft and tpot SLIs")
        if self.kind == "freshness" and self.max_age_s is None:
            raise ValueError("a freshness SLI needs max_age_s")
        if self.kind == "custom":
            if not self.total_query:
                raise ValueError("a custom SLI needs total_query")
            if bool(self.good_query) == bool(self.bad_query):
                raise ValueError("a custom SLI needs exactly one of good_query or bad_query")
        elif self.good_query or self.bad_query or self.total_query:
            raise ValueError("queries only apply to a custom SLI")
        return self


class RollingWindow(_Strict):
    type: Literal["rolling"] = "rolling"
    days: Annotated[int, Field(gt=0, le=400)]


class CalendarWindow(_Strict):
    type: Literal["calendar"]
    unit: Literal["week", "month"]
    # calendar periods start at local midnight in this zone (weeks on Monday, months on the 1st)...
    timezone: str = "UTC"
    # ...or at this local wall time ("2022-01-01 12:00:00"): every 7 days from it, or each month on
    # its day and time (OpenSLO's calendar startTime)
    start: str | None = None

    @model_validator(mode="after")
    def _start_is_a_wall_time(self) -> CalendarWindow:
        if self.start is not None:
            try:
                parsed = datetime.fromisoformat(self.start)
            except ValueError:
                raise ValueError(
                    f"start {self.start!r} is not a date and time (YYYY-MM-DD HH:MM:SS)"
                ) from None
            if parsed.tzinfo is not None:
                raise ValueError("start is a local wall time in the window's timezone: no UTC offset")
            if not 1 <= parsed.year <= 9998:
                raise ValueError("start is out of range")
        return self


class AlertTier(_Strict):
    """One multi-window burn-rate condition (Google SRE workbook, table 5-8)."""

    severity: Literal["page", "ticket"]
    budget_percent: Annotated[float, Field(gt=0, le=100)]
    long_window_s: Annotated[int, Field(gt=0)]
    short_window_s: Annotated[int, Field(gt=0)]


class SloSpec(_Strict):
    """One SLO. `objective` is a percentage in (0, 100)."""

    name: Annotated[str, Field(pattern=NAME_RE)]
    service: Annotated[str, Field(pattern=NAME_RE)]
    display_name: str = ""
    description: str = ""
    tier: Tier | None = None
    # requests of one class only (the `service_class` label of the telemetry contract); None: all
    service_class: ServiceClass | None = None
    sli: Sli
    objective: Annotated[float, Field(gt=0, lt=100)]
    window: RollingWindow | CalendarWindow = Field(discriminator="type")
    budgeting_method: Literal["occurrences", "timeslices", "ratio_timeslices"] = "occurrences"
    # timeslices: a minute is good when its SLI reaches this ratio
    timeslice_target: Annotated[float, Field(gt=0, le=1)] | None = None
    # fewer valid events than this in a window: insufficient_traffic, not a verdict
    min_valid_events: Annotated[int, Field(ge=1)] = 1
    alert_tiers: list[AlertTier] | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _window_type_default(cls, data: Any) -> Any:
        # `{"days": 28}` is unambiguous: accept it as a rolling window.
        if isinstance(data, dict) and isinstance(data.get("window"), dict) and "type" not in data["window"]:
            if "days" in data["window"]:
                data = {**data, "window": {**data["window"], "type": "rolling"}}
        return data

    @model_validator(mode="after")
    def _class_scope(self) -> SloSpec:
        if self.service_class is not None and self.sli.kind == "custom":
            raise ValueError(
                "service_class scopes the contract's SLIs; a custom SLI filters its own queries "
                '(add service_class="..." to them)'
            )
        return self

    @model_validator(mode="after")
    def _timeslices(self) -> SloSpec:
        if self.budgeting_method in ("timeslices",) and self.timeslice_target is None:
            raise ValueError("timeslices budgeting needs timeslice_target")
        return self

    @property
    def target_ratio(self) -> float:
        return self.objective / 100.0


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    # pydantic adds the discriminator tag and union branch names to loc; drop those
    parts = [str(p) for p in loc if not (isinstance(p, str) and (p in ("rolling", "calendar") or "[" in p))]
    path = ""
    for p in parts:
        path += f"[{p}]" if p.isdigit() else (f".{p}" if path else p)
    return path or "spec"


def problems_from_validation_error(exc: ValidationError, prefix: str = "") -> list[Problem]:
    out = []
    for err in exc.errors():
        path = _loc_to_path(tuple(err["loc"]))
        if prefix:
            path = f"{prefix}.{path}" if path != "spec" else prefix
        msg = err["msg"].removeprefix("Value error, ")
        out.append(Problem(path=path, message=msg))
    return out


def parse_slo_spec(data: Any) -> tuple[SloSpec | None, list[Problem]]:
    """Validate a plain dict as an SLO spec: (spec, []) or (None, problems)."""
    if not isinstance(data, dict):
        return None, [Problem("spec", "must be an object")]
    try:
        spec = SloSpec.model_validate(data)
    except ValidationError as exc:
        return None, problems_from_validation_error(exc)
    problems = custom_query_problems(spec)
    return (None, problems) if problems else (spec, [])


def custom_query_problems(spec: SloSpec) -> list[Problem]:
    """A custom SLI's queries must have an exact per-minute count (see slo.promql): anything else
    would be accepted into permanent no data, so it is refused with the reason and an exact form."""
    from slo.promql import query_problem

    if spec.sli.kind != "custom":
        return []
    out = []
    for field_name in ("good_query", "bad_query", "total_query"):
        query = getattr(spec.sli, field_name)
        if query and (problem := query_problem(query)):
            out.append(Problem(f"sli.{field_name}", problem))
    return out


def slo_spec_json_schema() -> dict[str, Any]:
    return SloSpec.model_json_schema()


_SLUG_RE = re.compile(r"[^a-z0-9-]+")


def slugify_name(text: str) -> str:
    """A name that matches NAME_RE, derived from free text (OpenSLO names, titles)."""
    slug = _SLUG_RE.sub("-", text.strip().lower()).strip("-")
    return slug[:63].strip("-") or "unnamed"


class ServiceSpec(_Strict):
    """An inference service as the API accepts it."""

    name: Annotated[str, Field(pattern=NAME_RE)]
    display_name: str = ""
    description: str = ""
    service_class: ServiceClass
    owner: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    tiers: Annotated[list[Tier], Field(min_length=1)]
    multi_tenant: bool = False

    @model_validator(mode="after")
    def _unique_tiers(self) -> ServiceSpec:
        if len(set(self.tiers)) != len(self.tiers):
            raise ValueError("tiers must not repeat")
        return self


def parse_service_spec(data: Any) -> tuple[ServiceSpec | None, list[Problem]]:
    if not isinstance(data, dict):
        return None, [Problem("spec", "must be an object")]
    try:
        return ServiceSpec.model_validate(data), []
    except ValidationError as exc:
        return None, problems_from_validation_error(exc)
