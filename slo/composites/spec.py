"""The composite SLO document: pure, framework-free, validated into problems with field paths."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from slo.spec import (
    NAME_RE,
    AlertTier,
    CalendarWindow,
    Problem,
    RollingWindow,
    Sli,
    SloSpec,
    _Strict,
    problems_from_validation_error,
)

AGGREGATIONS = ("weighted_average", "least_healthy")
MIN_MEMBERS = 2
MAX_MEMBERS = 25
# "service/name" of a member SLO
MEMBER_REF_RE = NAME_RE[:-1] + "/" + NAME_RE[1:]


class CompositeMember(_Strict):
    """One member SLO, named `service/name`, and its weight (used by `weighted_average`)."""

    slo: Annotated[str, Field(pattern=MEMBER_REF_RE)]
    weight: Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)] = 1.0

    @property
    def service(self) -> str:
        return self.slo.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.slo.split("/", 1)[1]


class CompositeSpec(_Strict):
    """A composite SLO over 2 to 25 member SLOs, with its own objective, window and alert tiers.

    `service` owns the composite: its alerts are routed to that service's notification channels.
    Members may belong to any service.
    """

    name: Annotated[str, Field(pattern=NAME_RE)]
    service: Annotated[str, Field(pattern=NAME_RE)]
    display_name: str = ""
    description: str = ""
    aggregation: Literal["weighted_average", "least_healthy"] = "weighted_average"
    objective: Annotated[float, Field(gt=0, lt=100)]
    window: RollingWindow | CalendarWindow = Field(discriminator="type")
    members: Annotated[list[CompositeMember], Field(min_length=MIN_MEMBERS, max_length=MAX_MEMBERS)]
    # fewer valid events (summed over the members with data) than this: insufficient_traffic
    min_valid_events: Annotated[int, Field(ge=1)] = 1
    alert_tiers: list[AlertTier] | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _window_type_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("window"), dict) and "type" not in data["window"]:
            if "days" in data["window"]:
                data = {**data, "window": {**data["window"], "type": "rolling"}}
        return data

    def engine_spec(self) -> SloSpec:
        """The composite as the budget engine's parameters (objective, window, alert tiers, traffic
        floor). The SLI is a placeholder: the engine never reads it, the composite's window sums
        are computed from its members (`slo.composites.core`)."""
        return SloSpec(
            name=self.name,
            service=self.service,
            sli=Sli(kind="availability"),
            objective=self.objective,
            window=self.window,
            min_valid_events=self.min_valid_events,
            alert_tiers=self.alert_tiers,
        )


def parse_composite_spec(data: Any) -> tuple[CompositeSpec | None, list[Problem]]:
    """Validate a plain dict: (spec, []) or (None, problems with field paths)."""
    if not isinstance(data, dict):
        return None, [Problem("spec", "must be an object")]
    problems: list[Problem] = []
    members = data.get("members")
    if isinstance(members, list):
        if len(members) < MIN_MEMBERS:
            problems.append(
                Problem(
                    "members", f"a composite needs at least {MIN_MEMBERS} member SLOs, got {len(members)}"
                )
            )
        elif len(members) > MAX_MEMBERS:
            problems.append(
                Problem("members", f"a composite has at most {MAX_MEMBERS} member SLOs, got {len(members)}")
            )
        seen: dict[str, int] = {}
        for index, member in enumerate(members):
            ref = member.get("slo") if isinstance(member, dict) else None
            if isinstance(ref, str):
                if ref in seen:
                    problems.append(
                        Problem(f"members[{index}].slo", f"{ref!r} is already member {seen[ref]}")
                    )
                seen.setdefault(ref, index)
    try:
        spec = CompositeSpec.model_validate(data)
    except ValidationError as exc:
        found = problems_from_validation_error(exc)
        # the length problems above say it in words; drop pydantic's duplicate of them
        if any(p.path == "members" for p in problems):
            found = [p for p in found if p.path != "members"]
        return None, problems + found
    return (None, problems) if problems else (spec, [])


def composite_spec_json_schema() -> dict[str, Any]:
    return CompositeSpec.model_json_schema()
