"""Reads for routing policies and cache configs: validation context, fleet activity, explain."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import F

from controlplane.errors import NotFound, ValidationFailed
from routing.documents.kinds import CACHE_CONFIG, ROUTING_POLICY, Kind
from routing.documents.validation import (
    LatencySlo,
    ValidationContext,
    build_context,
    context_problems,
    split,
)
from routing.documents.yamlio import canonical_sha256
from routing.models.documents import APPROVED
from routing.policy import CompiledPolicy, cache_key, compile_policy, decide
from slo.models import Service, Slo
from slo.spec import Problem


def validation_context_for(*, service: Service) -> ValidationContext:
    """The service's class, tenancy and latency SLOs, as the validator needs them."""
    rows = Slo.objects.filter(service=service, sli_kind="latency", archived_at__isnull=True).values_list(
        "name", "tier", "spec", "objective"
    )
    slos = []
    for name, tier, spec, objective in rows:
        threshold = (spec or {}).get("sli", {}).get("threshold_ms")
        if isinstance(threshold, int | float):
            slos.append(LatencySlo(name, tier or "", float(threshold), float(objective)))
    return build_context(
        service=service.name,
        service_class=service.service_class,
        tiers=service.tiers or (),
        multi_tenant=service.multi_tenant,
        latency_slos=slos,
    )


@dataclass(frozen=True)
class Checked:
    """A document's validation against its service: what the API returns and a version stores."""

    errors: list[Problem]
    warnings: list[Problem]
    context: ValidationContext

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "errors": [p.as_dict() for p in self.errors],
            "warnings": [p.as_dict() for p in self.warnings],
            "context": self.context.as_dict(),
        }


def document_check(*, kind: Kind, service: Service, document: Any) -> Checked:
    """Validate without storing (the dry run, and the first step of every write)."""
    context = validation_context_for(service=service)
    errors, warnings = split(kind.problems(document, context))
    return Checked(errors, warnings, context)


def service_get(*, ref: Any) -> Service:
    """A service by id or name, or a 400 naming the `service` field."""
    service = None
    if isinstance(ref, int) and not isinstance(ref, bool):
        service = Service.objects.filter(pk=ref).first()
    elif isinstance(ref, str) and ref:
        service = (
            Service.objects.filter(pk=int(ref)) if ref.isdigit() else Service.objects.filter(name=ref)
        ).first()
    if service is None:
        raise ValidationFailed("invalid input", problems=[Problem("service", f"unknown service {ref!r}")])
    return service


def line_list(*, kind: Kind) -> list[Any]:
    """Every line of a kind with its service, by service name."""
    return list(kind.line_model.objects.select_related("service").order_by("service__name"))


def version_list(*, kind: Kind, line: Any, limit: int) -> list[Any]:
    """The newest `limit` versions of a line, newest first."""
    return list(kind.version_model.objects.filter(line=line).order_by("-version")[:limit])


def line_get(*, kind: Kind, ref: str) -> Any:
    """A document line by id or by its service's name."""
    queryset = kind.line_model.objects.select_related("service")
    line = (queryset.filter(pk=int(ref)) if ref.isdigit() else queryset.filter(service__name=ref)).first()
    if line is None:
        raise NotFound(f"no such {kind.label}")
    return line


def version_get(*, kind: Kind, line: Any, version: int | None) -> Any:
    """One version of a line (None: the newest)."""
    number = line.current_version if version is None else version
    row = kind.version_model.objects.filter(line=line, version=number).first()
    if row is None:
        raise NotFound(f"{kind.label} {line.pk} has no version {number}")
    return row


def current_versions(*, kind: Kind, line_ids: Iterable[int]) -> dict[int, Any]:
    """The newest version of each line, in one query."""
    rows = kind.version_model.objects.filter(line_id__in=list(line_ids), version=F("line__current_version"))
    return {row.line_id: row for row in rows}


def version_specs(*, kind: Kind, line_id: int, versions: list[int]) -> dict[int, Any]:
    rows = kind.version_model.objects.filter(line_id=line_id, version__in=versions).values_list(
        "version", "document"
    )
    return dict(rows)


# --- fleet activity -------------------------------------------------------------------------


def applied_document_counts(*, kind: Kind, service_ids: Iterable[int]) -> dict[tuple[int, str], int]:
    """(service id, document sha256) -> how many gateways report running it.

    A gateway runs the bundle of its *applied* revision (what it ACKed or heartbeat-reported),
    not its desired one. Two queries whatever the fleet size; bundles are hashed once each.
    """
    from routing.models.fleet import GatewayRevision

    ids = list(service_ids)
    if not ids:
        return {}
    rows = GatewayRevision.objects.filter(
        gateway__service_id__in=ids,
        gateway__applied_revision__isnull=False,
        revision=F("gateway__applied_revision"),
    ).values_list("gateway__service_id", "bundle")
    counts: dict[tuple[int, str], int] = defaultdict(int)
    for service_id, bundle in rows:
        document = (bundle or {}).get(kind.bundle_key)
        if isinstance(document, dict):
            counts[(service_id, canonical_sha256(document))] += 1
    return dict(counts)


def active_by_line(*, kind: Kind, lines: Iterable[Any]) -> dict[tuple[int, int], int]:
    """(line id, version number) -> gateways running it, for versions that run somewhere.

    A document present in several versions (a restore repeats an old one) is credited to the
    newest of them: that is the lineage being run. Three queries at most, whatever the page size.
    """
    lines = list(lines)
    counts = applied_document_counts(kind=kind, service_ids=[line.service_id for line in lines])
    if not counts:
        return {}
    rows = (
        kind.version_model.objects.filter(
            line_id__in=[line.pk for line in lines], document_sha256__in={sha for (_sid, sha) in counts}
        )
        .order_by("line_id", "-version")
        .values_list("line_id", "line__service_id", "version", "document_sha256")
    )
    out: dict[tuple[int, int], int] = {}
    seen: set[tuple[int, str]] = set()
    for line_id, service_id, number, sha in rows:
        if (line_id, sha) not in seen:
            seen.add((line_id, sha))
            out[(line_id, number)] = counts[(service_id, sha)]
    return out


def line_active_versions(*, kind: Kind, line: Any) -> dict[int, int]:
    """version number -> gateways, for one line's versions that run somewhere."""
    return {number: count for (_line_id, number), count in active_by_line(kind=kind, lines=[line]).items()}


def baseline_version(*, kind: Kind, line: Any) -> Any | None:
    """The version running on the most gateways; else the newest approved; else None."""
    active = line_active_versions(kind=kind, line=line)
    if active:
        number = max(active, key=lambda v: (active[v], v))
        return version_get(kind=kind, line=line, version=number)
    return kind.version_model.objects.filter(line=line, state=APPROVED).order_by("-version").first()


# --- explain --------------------------------------------------------------------------------

_COMPILED: OrderedDict[tuple[str, str], CompiledPolicy] = OrderedDict()
_COMPILED_MAX = 64


def compiled_policy(*, version: Any, service_class: str) -> CompiledPolicy:
    """Compile once per (document, service class): versions are immutable, so the hash is the key."""
    key = (version.document_sha256, service_class)
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = compile_policy(version.document, service_class=service_class)
        _COMPILED[key] = compiled
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    else:
        _COMPILED.move_to_end(key)
    return compiled


def routing_policy_explain(*, line: Any, version: int | None, context: Mapping[str, Any]) -> dict[str, Any]:
    """The decision for one request context: route chain, the matching rule, and for every earlier
    rule the conditions that failed with their actual and expected values."""
    problems = context_problems(context)
    if problems:
        raise ValidationFailed("invalid request context", problems=problems)
    row = version_get(kind=ROUTING_POLICY, line=line, version=version)
    decision = decide(
        compiled_policy(version=row, service_class=line.service.service_class), context, explain=True
    )
    return {
        "version": row.version,
        "service": line.service.name,
        "decision": decision.as_dict(),
        "routes": list(decision.routes),
        "explanation": decision.explain().splitlines(),
    }


def cache_config_explain_key(
    *, line: Any, version: int | None, layer: str | None, request: Mapping[str, Any]
) -> dict[str, Any]:
    """The cache key of a request in one layer (or every layer): its parts and missing fields."""
    row = version_get(kind=CACHE_CONFIG, line=line, version=version)
    from routing.policy import CacheConfig

    config = CacheConfig.model_validate(row.document)
    if layer is not None:
        try:
            layers = [config.layer(layer)]
        except KeyError:
            names = ", ".join(item.name for item in config.layers) or "none"
            raise ValidationFailed(
                "invalid input", problems=[Problem("layer", f"no layer {layer!r} (layers: {names})")]
            ) from None
    else:
        layers = [item for item in config.layers if item.enabled]
    keys = []
    for item in layers:
        key = cache_key(config, item, dict(request))
        keys.append(
            {
                "layer": item.name,
                "kind": item.kind,
                "key": key.key,
                "namespace": key.namespace,
                "parts": [
                    {"field": name, "value": value, "missing": name in key.missing}
                    for name, value in key.parts
                ],
                "missing": list(key.missing),
                "cacheable": key.cacheable,
                "explanation": key.explain().splitlines(),
            }
        )
    return {"version": row.version, "service": line.service.name, "keys": keys}
