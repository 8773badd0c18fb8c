"""The model registry: model versions with their provenance (fixed once created)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import Conflict, NotFound, ValidationFailed
from routing.models.releases import ModelVersion
from routing.releases.inputs import MODEL_MESSAGES, ModelVersionChange, ModelVersionInput, parse_partial
from routing.releases.transitions import actor_name
from slo.models import Service
from slo.spec import Problem

MODEL_FIELDS = (
    "service",
    "name",
    "version",
    "description",
    "training_data_snapshot",
    "fine_tuning_source",
    "quantization",
    "artifact_digest",
    "rollback_target",
)

MODEL_MUTABLE = ("description", "rollback_target")


def model_version_view(model: ModelVersion) -> dict[str, Any]:
    return {
        "id": model.pk,
        "service": model.service.name,
        "name": model.name,
        "version": model.version,
        "description": model.description,
        "training_data_snapshot": model.training_data_snapshot,
        "fine_tuning_source": model.fine_tuning_source,
        "quantization": model.quantization,
        "artifact_digest": model.artifact_digest,
        "rollback_target": model.rollback_target_id,
        "deployed_at": model.deployed_at,
    }


def _model_fields(data: Mapping[str, Any], *, existing: ModelVersion | None) -> dict[str, Any]:
    """The fields to store from a create (`ModelVersionInput`) or change (`ModelVersionChange`) body,
    or a 400 naming every problem."""
    schema = ModelVersionChange if existing is not None else ModelVersionInput
    body, problems = parse_partial(schema, data, messages=MODEL_MESSAGES)
    for index, problem in enumerate(problems):
        if existing is not None and problem.message == "unknown field" and problem.path in MODEL_FIELDS:
            problems[index] = Problem(problem.path, "fixed once created (provenance): register a new version")
    given = body.model_fields_set
    out: dict[str, Any] = {}
    service = existing.service if existing is not None else None
    if existing is None:
        ref = getattr(body, "service", None)
        if isinstance(ref, str):
            service = Service.objects.filter(name=ref).first()
        elif ref is not None:
            service = Service.objects.filter(pk=ref).first()
        if service is None and "service" in given:
            problems.append(Problem("service", "unknown service"))
        out["service"] = service
        for key in (
            "name",
            "version",
            "training_data_snapshot",
            "fine_tuning_source",
            "quantization",
            "artifact_digest",
        ):
            out[key] = getattr(body, key, None)
    if "description" in given:
        out["description"] = body.description
    if "rollback_target" in given and body.rollback_target is not None:
        target = ModelVersion.objects.filter(pk=body.rollback_target).first()
        if target is None:
            problems.append(Problem("rollback_target", "unknown model version id"))
        elif service is not None and target.service_id != service.pk:
            problems.append(Problem("rollback_target", "belongs to another service"))
        elif existing is not None and target.pk == existing.pk:
            problems.append(Problem("rollback_target", "cannot be the version itself"))
        out["rollback_target"] = target
    elif "rollback_target" in given:
        out["rollback_target"] = None
    if problems:
        raise ValidationFailed("invalid model version", problems=problems)
    return out


def model_version_create(*, actor: Any, data: Mapping[str, Any], now: datetime | None = None) -> ModelVersion:
    fields = _model_fields(data, existing=None)
    try:
        with transaction.atomic():
            model = ModelVersion.objects.create(
                **fields, created_by_name=actor_name(actor)[:150], created_at=now or timezone.now()
            )
            audit_record(actor=actor, action="create", obj=model, after=model_version_view(model))
    except IntegrityError:
        raise ValidationFailed(
            "invalid model version",
            problems=[Problem("version", "this service already has this model name and version")],
        ) from None
    return model


def model_version_update(*, actor: Any, model_id: int, data: Mapping[str, Any]) -> ModelVersion:
    with transaction.atomic():
        model = ModelVersion.objects.select_for_update().select_related("service").filter(pk=model_id).first()
        if model is None:
            raise NotFound("no such model version")
        fields = _model_fields(data, existing=model)
        before = model_version_view(model)
        for key, value in fields.items():
            setattr(model, key, value)
        model.save()
        audit_record(actor=actor, action="update", obj=model, before=before, after=model_version_view(model))
    return model


def model_version_delete(*, actor: Any, model_id: int) -> None:
    with transaction.atomic():
        model = ModelVersion.objects.select_for_update().select_related("service").filter(pk=model_id).first()
        if model is None:
            raise NotFound("no such model version")
        if model.releases.exists() or model.deployed_at is not None:
            raise Conflict("the model version was released: it stays in the registry for provenance")
        audit_record(actor=actor, action="delete", obj=model, before=model_version_view(model))
        ModelVersion.objects.filter(rollback_target=model).update(rollback_target=None)
        model.delete()
