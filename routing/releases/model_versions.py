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
from routing.releases import gates
from routing.releases.inputs import int_or_none
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
    import re

    problems: list[Problem] = []
    allowed = MODEL_MUTABLE if existing is not None else MODEL_FIELDS
    for key in sorted(set(data) - set(allowed)):
        message = (
            "fixed once created (provenance): register a new version"
            if key in MODEL_FIELDS
            else "unknown field"
        )
        problems.append(Problem(key, message))
    out: dict[str, Any] = {}
    service = existing.service if existing is not None else None
    if existing is None:
        ref = data.get("service")
        service = (
            Service.objects.filter(name=ref).first()
            if isinstance(ref, str)
            else (
                Service.objects.filter(pk=int_or_none(ref)).first() if int_or_none(ref) is not None else None
            )
        )
        if service is None:
            problems.append(Problem("service", "unknown service"))
        out["service"] = service
        name = data.get("name")
        if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9-]{0,62}$", name):
            problems.append(Problem("name", "required: lowercase letters, digits and dashes"))
        out["name"] = name
        version = data.get("version")
        if not isinstance(version, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,62}$", version):
            problems.append(Problem("version", "required: letters, digits, . _ + - (max 63)"))
        out["version"] = version
        snapshot = data.get("training_data_snapshot")
        if not isinstance(snapshot, str) or not snapshot.strip() or len(snapshot) > 300:
            problems.append(Problem("training_data_snapshot", "required: the dataset and its snapshot id"))
        out["training_data_snapshot"] = snapshot
        source = data.get("fine_tuning_source", "")
        if not isinstance(source, str) or len(source) > 300:
            problems.append(Problem("fine_tuning_source", "a string of at most 300 characters"))
        out["fine_tuning_source"] = source
        quantization = data.get("quantization", {})
        if not isinstance(quantization, dict) or len(str(quantization)) > 4000:
            problems.append(Problem("quantization", "an object (at most 4 KB)"))
        out["quantization"] = quantization
        digest = data.get("artifact_digest")
        if not isinstance(digest, str) or not gates.DIGEST_RE.match(digest):
            problems.append(Problem("artifact_digest", "required: sha256:<64 lowercase hex>"))
        out["artifact_digest"] = digest
    if "description" in data:
        if not isinstance(data["description"], str):
            problems.append(Problem("description", "a string"))
        out["description"] = data["description"]
    if "rollback_target" in data and data["rollback_target"] is not None:
        target = (
            ModelVersion.objects.filter(pk=int_or_none(data["rollback_target"])).first()
            if int_or_none(data["rollback_target"]) is not None
            else None
        )
        if target is None:
            problems.append(Problem("rollback_target", "unknown model version id"))
        elif service is not None and target.service_id != service.pk:
            problems.append(Problem("rollback_target", "belongs to another service"))
        elif existing is not None and target.pk == existing.pk:
            problems.append(Problem("rollback_target", "cannot be the version itself"))
        out["rollback_target"] = target
    elif "rollback_target" in data:
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
