"""Declared shapes of release request bodies: the create (and preview) body with its target selector
and wave plan, the submit body and instants. Pydantic checks the shapes; every problem comes back as
a field path with a message a person reads (`waves[1].percent`, `target.labels.zone`). Rules that
need the database (which service, its document versions, the model's owner) stay in the services.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from django.utils.dateparse import parse_datetime
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError

from controlplane.errors import ValidationFailed
from routing.fleet.labels import LABEL_KEY_RULE, label_key_ok
from routing.policy._paths import loc_to_path
from routing.releases import alerts, canary
from routing.releases.gates import DIGEST_RE
from slo.spec import Problem

MAX_WAVES = 10
MAX_BAKE_S = 7 * 86_400


def _label_key(key: str) -> str:
    if not label_key_ok(key):
        raise PydanticCustomError("label_key", "label key: {rule}", {"rule": LABEL_KEY_RULE})
    return key


def _positive(number: int) -> int:
    if number < 1:
        raise PydanticCustomError("version_number", "a version number of the service's document")
    return number


def _id(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value):
        return int(value)
    raise PydanticCustomError("id", "an id")


def _name_or_id(value: Any) -> str | int:
    return value if isinstance(value, str) else _id(value)


# An id is a JSON integer or a string of ASCII digits (what a form sends); never a boolean or a float.
Id = Annotated[int, PlainValidator(_id)]
# A service by its name or its id.
NameOrId = Annotated[str | int, PlainValidator(_name_or_id)]
VersionNumber = Annotated[Id, AfterValidator(_positive)]
LabelKey = Annotated[StrictStr, AfterValidator(_label_key)]


def _aware_instant(value: str) -> datetime:
    try:
        moment = parse_datetime(value)
    except ValueError:  # well-formed but impossible, e.g. minute 60
        moment = None
    if moment is None or moment.tzinfo is None:
        raise PydanticCustomError("instant", "an ISO 8601 time with a timezone")
    return moment


# An ISO 8601 string with its timezone; a number of seconds or a naive time is refused.
Instant = Annotated[StrictStr, AfterValidator(_aware_instant)]

# The message of a shape problem by its path (indices as []): what the field must be. Problems raised
# by the validators above carry their own message.
MESSAGES = {
    "service": "unknown service",
    "kind": "one of normal, hotfix, rollback",
    "title": "a string of at most 200 characters",
    "reason": "a string",
    "routing_policy_version": "a version number of the service's document",
    "cache_config_version": "a version number of the service's document",
    "model_version": "unknown model version id",
    "confirm_wave_sizes": "true or false",
    "target": "an object: tier, region, labels, gateways",
    "target.tier": "a string",
    "target.region": "a string",
    "waves": f"a list of 1 to {MAX_WAVES} waves",
    "waves[]": "an object with percent and bake_s",
    "waves[].percent": "a number above the previous wave's and at most 100 (cumulative)",
    "waves[].bake_s": f"whole seconds from 0 to {MAX_BAKE_S}",
    "at": "an ISO 8601 time with a timezone",
    "name": "lowercase letters, digits and dashes",
    "gateway": "a gateway id",
}
# error types whose message is written where they are raised
_CUSTOM = (
    "label_key",
    "version_number",
    "instant",
    "labels",
    "gateways",
    "criterion",
    "number",
    "severities",
)


def problems_of(
    exc: ValidationError, *, root: str = "", messages: Mapping[str, str] = MESSAGES
) -> list[Problem]:
    """Each pydantic error as a `Problem`: unknown fields first, by name (they are usually the typo
    behind the rest), then the others in the order of the declared fields."""
    unknown, others = [], []
    for err in exc.errors():
        path = loc_to_path(tuple(err["loc"]), root)
        if err["type"] == "extra_forbidden":
            unknown.append(Problem(path, "unknown field"))
            continue
        custom = err["type"] in _CUSTOM
        message = err["msg"] if custom else messages.get(re.sub(r"\[\d+\]", "[]", path), err["msg"])
        others.append(Problem(path, message))
    return sorted(unknown, key=lambda problem: problem.path) + others


class Wave(BaseModel):
    """One wave of a plan: the cumulative share of the release's gateways it reaches, and how long it
    bakes under canary analysis before the next one starts."""

    model_config = ConfigDict(extra="ignore")

    percent: StrictFloat
    bake_s: Annotated[StrictInt, Field(ge=0, le=MAX_BAKE_S)] = 0


class TargetSelector(BaseModel):
    """Which of the service's gateways a release goes to; every given field must match."""

    model_config = ConfigDict(extra="forbid")

    tier: StrictStr | None = None
    region: StrictStr | None = None
    labels: dict[LabelKey, StrictStr] | None = None
    gateways: Annotated[list[Id], Field(min_length=1)] | None = None

    @field_validator("labels", mode="wrap")
    @classmethod
    def _labels_shape(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            if all(err["type"] == "label_key" for err in exc.errors()):
                raise  # a well-formed object with bad keys: each key is named
            raise PydanticCustomError("labels", "an object of string values") from None

    @field_validator("gateways", mode="wrap")
    @classmethod
    def _gateways_shape(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("gateways", "a non-empty list of gateway ids") from None

    def selector(self) -> dict[str, Any]:
        """The stored form: only what narrows the choice (an empty tier or region does not)."""
        out: dict[str, Any] = {key: getattr(self, key) for key in ("tier", "region") if getattr(self, key)}
        if self.labels is not None:
            out["labels"] = self.labels
        if self.gateways is not None:
            out["gateways"] = sorted(set(self.gateways))
        return out


class ReleaseDraftInput(BaseModel):
    """The body of a release create (and preview). `service` is a name or an id; document versions
    are numbers of the service's documents, `model_version` a registry id."""

    model_config = ConfigDict(extra="forbid")

    service: NameOrId | None = None
    kind: Literal["normal", "hotfix", "rollback"] = "normal"
    title: Annotated[StrictStr, Field(max_length=200)] = ""
    reason: StrictStr = ""
    routing_policy_version: VersionNumber | None = None
    cache_config_version: VersionNumber | None = None
    model_version: Id | None = None
    target: TargetSelector | None = None
    waves: Annotated[list[Wave], Field(min_length=1, max_length=MAX_WAVES)] | None = None
    confirm_wave_sizes: StrictBool = False


class SubmitInput(BaseModel):
    """The body of a submit: whether a first wave bigger than asked is accepted."""

    model_config = ConfigDict(extra="ignore")

    confirm_wave_sizes: StrictBool = False


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "blank")
    return value


def _small(value: dict[str, Any]) -> dict[str, Any]:
    if len(str(value)) > 4000:
        raise PydanticCustomError("too_big", "too big")
    return value


def _digest(value: str) -> str:
    if not DIGEST_RE.match(value):
        raise PydanticCustomError("digest", "not a digest")
    return value


Slug = Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]

MODEL_MESSAGES = {
    "service": "unknown service",
    "name": "required: lowercase letters, digits and dashes",
    "version": "required: letters, digits, . _ + - (max 63)",
    "training_data_snapshot": "required: the dataset and its snapshot id",
    "fine_tuning_source": "a string of at most 300 characters",
    "quantization": "an object (at most 4 KB)",
    "artifact_digest": "required: sha256:<64 lowercase hex>",
    "description": "a string",
    "rollback_target": "unknown model version id",
}


class ModelVersionChange(BaseModel):
    """What may change on a registered model version; its provenance is fixed once created."""

    model_config = ConfigDict(extra="forbid")

    description: StrictStr = ""
    rollback_target: Id | None = None


class ModelVersionInput(ModelVersionChange):
    """A model version to register, with its provenance."""

    service: NameOrId
    name: Slug
    version: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,62}$")]
    training_data_snapshot: Annotated[StrictStr, Field(max_length=300), AfterValidator(_not_blank)]
    fine_tuning_source: Annotated[StrictStr, Field(max_length=300)] = ""
    quantization: Annotated[dict[str, Any], AfterValidator(_small)] = Field(default_factory=dict)
    artifact_digest: Annotated[StrictStr, AfterValidator(_digest)]


CANARY_KNOWN = tuple(sorted({*canary.Criteria.__dataclass_fields__, "window_minutes", "lag_minutes"}))


def _criterion(key: Any) -> str:
    if key not in CANARY_KNOWN:
        raise PydanticCustomError(
            "criterion", "unknown criterion; known: {known}", {"known": ", ".join(CANARY_KNOWN)}
        )
    return key


def _non_negative(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PydanticCustomError("number", "a non-negative number")
    return value


def _severities(value: Any) -> list[str]:
    problems = alerts.severities_problems(value)
    if problems:
        raise PydanticCustomError("severities", problems[0])
    return value


class ReleaseSettingsInput(BaseModel):
    """A service's release settings: approvals needed, canary criteria overrides (numbers kept as
    sent) and the severities of Alertmanager alerts that roll a release back."""

    model_config = ConfigDict(extra="forbid")

    alert_severities: Annotated[Any, PlainValidator(_severities)] = Field(
        default_factory=lambda: list(alerts.DEFAULT_SEVERITIES)
    )
    required_approvals: Annotated[StrictInt, Field(ge=1, le=10)] = 1
    canary: dict[
        Annotated[str, PlainValidator(_criterion)], Annotated[Any, PlainValidator(_non_negative)]
    ] = Field(default_factory=dict)


SETTINGS_MESSAGES = {
    "required_approvals": "an integer from 1 to 10",
    "canary": "an object",
}


class GatewayRef(BaseModel):
    """A gateway named by its id (a query parameter or a body field)."""

    gateway: Id


class WebhookSecretInput(BaseModel):
    """An Alertmanager secret's name (the secret itself is generated)."""

    name: Slug


def wave_plan_problems(waves: list[Wave]) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The stored plan and the problems of its order: each wave reaches more gateways than the one
    before (the shares are cumulative) and the last reaches them all."""
    plan: list[dict[str, Any]] = []
    problems: list[Problem] = []
    previous = 0.0
    for index, wave in enumerate(waves):
        if not previous < wave.percent <= 100:
            message = f"a number above {previous:g} and at most 100 (cumulative)"
            problems.append(Problem(f"waves[{index}].percent", message))
            continue
        previous = wave.percent
        plan.append({"percent": wave.percent, "bake_s": wave.bake_s})
    if plan and plan[-1]["percent"] != 100:
        problems.append(Problem("waves", "the last wave must reach 100%"))
    return plan, problems


M = TypeVar("M", bound=BaseModel)


def parse_input(model: type[M], data: Any, *, detail: str, messages: Mapping[str, str] = MESSAGES) -> M:
    """`data` validated by `model`, or a 400 naming every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(detail, problems=problems_of(exc, messages=messages)) from None


def parse_partial(
    model: type[M], data: Any, *, messages: Mapping[str, str] = MESSAGES
) -> tuple[M, list[Problem]]:
    """`data` validated by `model`, and the problems of its invalid fields. With problems, the model
    holds the valid fields only (the others take their defaults, a required one is unset): the caller
    goes on with the checks only the database can make, so that one 400 names every problem."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = problems_of(exc, messages=messages)
    partial = model.model_construct()
    if isinstance(data, Mapping):
        invalid = {re.split(r"[.\[]", p.path, maxsplit=1)[0] for p in problems}
        for key, value in data.items():
            if key in model.model_fields and key not in invalid:
                model.__pydantic_validator__.validate_assignment(partial, key, value)
    return partial, problems


_INSTANT = TypeAdapter(Instant)


def parse_at(value: Any, path: str = "at") -> datetime:
    """An ISO 8601 instant with a timezone, or a 400."""
    try:
        return _INSTANT.validate_python(value)
    except ValidationError:
        raise ValidationFailed("invalid input", problems=[Problem(path, MESSAGES["at"])]) from None
