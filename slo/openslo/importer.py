"""OpenSLO v1 import: YAML text to SloSpecs and services, problems as values (pure)."""

from __future__ import annotations

import json
import logging
from typing import Any

from controlplane import safeload
from slo.openslo.composites import import_composite, is_composite
from slo.openslo.mapping import (
    _ANNOTATION_FIELDS,
    _METADATA_KEYS,
    _RATIO_KEYS,
    _SLI_SPEC_KEYS,
    _SLO_SPEC_KEYS,
    _TOP_KEYS,
    ALERT_KINDS,
    ANNOTATION_PREFIX,
    ANNOTATION_SLI,
    API_VERSION,
    KINDS,
    LABEL_ANNOTATION_PREFIX,
    LABEL_INDICATOR_DESCRIPTION,
    LABEL_INDICATOR_DISPLAY_NAME,
    LABEL_INDICATOR_NAME,
    LABEL_LIST_LABELS,
    LABEL_NAME,
    LABEL_OBJECTIVE_DISPLAY_NAME,
    LABEL_OBJECTIVE_OP,
    LABEL_SERVICE,
    LABEL_THRESHOLD_OP,
    LABEL_THRESHOLD_QUERY,
    LABEL_TIER_LIST,
    TIER_LABEL,
    ImportResult,
    _annotations,
    _Context,
    _Indicator,
    _labels,
    _Meta,
    _Object,
    _Report,
    _show,
    _string,
    _type_name,
    _unknown_keys,
)
from slo.openslo.sources import _import_datasource, _metric_source, _source_problems, _source_type_label
from slo.openslo.windows import (
    _budgeting_method,
    _objectives,
    _time_window,
)
from slo.spec import TIERS, SloSpec, parse_slo_spec, slugify_name

logger = logging.getLogger(__name__)


def import_openslo(text: str) -> ImportResult:
    """Import a multi-document OpenSLO v1 YAML string. Never raises: problems are values."""
    report = _Report()
    try:
        result = _import(text, report)
    except Exception:  # noqa: BLE001 -- the contract is "never raise on input"; a bug becomes a problem
        logger.exception("OpenSLO import failed on unexpected input")
        report.error("documents", "internal error while importing this file (a bug: please report it)")
        result = ImportResult()
    result.problems = report.errors
    result.unsupported = report.drops
    return result


def _load_documents(text: str, report: _Report) -> list[Any] | None:
    # controlplane.safeload: no aliases or merge keys, duplicate keys refused, timestamps kept as
    # text (OpenSLO's calendar startTime has no zone), and a cap on documents, values and depth
    try:
        return safeload.load_yaml_documents(text)
    except safeload.InputRefused as exc:
        report.error("documents", exc.message)
    return None


def _import(text: str, report: _Report) -> ImportResult:
    result = ImportResult()
    if not isinstance(text, str):
        report.error("documents", "expected YAML text")
        return result
    documents = _load_documents(text, report)
    if documents is None:
        return result
    ctx = _Context(report)
    objects: list[_Object] = []
    for index, document in enumerate(documents):
        if document is None:  # an empty document, e.g. after a trailing `---`: nothing to import
            continue
        # the list form (oslo, the OpenSLO SDK): one YAML document holding a list of objects
        items = enumerate(document) if isinstance(document, list) else [(None, document)]
        for item_index, item in items:
            item_path = f"documents[{index}]" if item_index is None else f"documents[{index}][{item_index}]"
            if item is None and item_index is not None:
                report.drop(item_path, "an empty list item: nothing to import")
                continue
            obj = _envelope(item, item_path, report)
            if obj is not None:
                objects.append(obj)

    service_paths: dict[str, str] = {}
    for obj in objects:
        if obj.kind == "Service":
            service = _import_service(obj, report)
            if service["name"] in service_paths:
                report.error(
                    f"{obj.path}.metadata.name",
                    f"service {service['name']!r} is already defined in {service_paths[service['name']]}",
                )
            else:
                service_paths[service["name"]] = obj.path
                result.services.append(service)
        elif obj.kind == "SLI":
            if obj.name in ctx.slis:
                report.error(
                    f"{obj.path}.metadata.name",
                    f"SLI {obj.name!r} is already defined in {ctx.slis[obj.name].path}",
                )
            else:
                ctx.slis[obj.name] = obj
        elif obj.kind == "DataSource":
            if obj.name in ctx.datasources:
                report.error(
                    f"{obj.path}.metadata.name",
                    f"DataSource {obj.name!r} is already defined in {ctx.datasources[obj.name].path}",
                )
                continue
            ctx.datasources[obj.name] = obj
            result.datasources.append(_import_datasource(obj, report))
        elif obj.kind in ALERT_KINDS:
            report.drop(
                obj.path,
                f"{obj.kind} {obj.name!r} not imported: burn-rate alerts come from each SLO's alert tiers",
            )

    slo_paths: dict[str, str] = {}
    for obj in objects:
        if obj.kind != "SLO":
            continue
        composite = None
        if is_composite(obj.spec):
            specs, composite = import_composite(obj, ctx, _import_slo)
        else:
            specs = _import_slo(obj, ctx)
        if composite is not None:
            result.composites.append(composite)
        for spec in specs:
            if spec.name in slo_paths:
                report.error(
                    f"{obj.path}.metadata.name",
                    f"SLO name {spec.name!r} is already used by {slo_paths[spec.name]}",
                )
                continue
            slo_paths[spec.name] = obj.path
            result.slos.append(spec)

    for name, obj in ctx.slis.items():
        if name not in ctx.used_slis:
            report.drop(obj.path, f"SLI {name!r} is not referenced by any SLO in this file: not imported")
    return result


def _envelope(document: Any, path: str, report: _Report) -> _Object | None:
    if not isinstance(document, dict):
        report.error(
            path,
            f"must be a mapping (an OpenSLO object with apiVersion, kind, metadata and spec), got {_type_name(document)}",
        )
        return None
    api_version = document.get("apiVersion")
    if api_version is None:
        report.error(f"{path}.apiVersion", f"required: {API_VERSION}")
        return None
    if api_version != API_VERSION:
        if isinstance(api_version, str) and api_version.startswith("openslo/v1alpha"):
            message = (
                f"{api_version} is not supported: only {API_VERSION} is. Upgrade the document "
                "(v1alpha keeps queries in objectives[].ratioMetrics, v1 in spec.indicator)"
            )
        else:
            message = f"unsupported apiVersion {_show(api_version)}: only {API_VERSION} is supported"
        report.error(f"{path}.apiVersion", message)
        return None
    kind = document.get("kind")
    if kind not in KINDS:
        message = "required" if kind is None else f"unknown kind {_show(kind)}"
        report.error(f"{path}.kind", f"{message}: one of {', '.join(KINDS)}")
        return None
    _unknown_keys(document, _TOP_KEYS, path, report)
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        report.error(
            f"{path}.metadata", "required: a mapping with a name" if metadata is None else "must be a mapping"
        )
        return None
    name = _string(metadata, "name", f"{path}.metadata", report, required=True)
    if not name:
        return None
    spec = document.get("spec")
    if spec is None and kind != "SLO":
        spec = {}
    if not isinstance(spec, dict):
        report.error(f"{path}.spec", "required" if spec is None else "must be a mapping")
        return None
    return _Object(path, kind, name, metadata, spec)


def _metadata(obj: _Object, report: _Report) -> _Meta:
    path = f"{obj.path}.metadata"
    _unknown_keys(obj.metadata, _METADATA_KEYS, path, report)
    display_name = _string(obj.metadata, "displayName", path, report) or ""
    lists: list[str] = []
    labels = _labels(obj.metadata.get("labels"), f"{path}.labels", report, lists)
    annotations = _annotations(obj.metadata.get("annotations"), f"{path}.annotations", report)
    return _Meta(obj.name, display_name, labels, annotations, lists)


def _list_labels(meta: _Meta, labels: dict[str, str]) -> None:
    kept = [key for key in meta.list_labels if key in labels]
    if kept:
        labels[LABEL_LIST_LABELS] = ",".join(kept)


def _import_service(obj: _Object, report: _Report) -> dict[str, Any]:
    meta = _metadata(obj, report)
    _unknown_keys(obj.spec, {"description"}, f"{obj.path}.spec", report)
    labels = dict(meta.labels)
    _list_labels(meta, labels)
    for key, value in meta.annotations.items():
        if key.startswith(ANNOTATION_PREFIX):
            report.drop(f"{obj.path}.metadata.annotations.{key}", "annotation not used on a Service: dropped")
        else:
            labels[LABEL_ANNOTATION_PREFIX + key] = value
    name = slugify_name(obj.name)
    if name != obj.name:
        labels[LABEL_NAME] = obj.name
        report.drop(
            f"{obj.path}.metadata.name",
            f"renamed to {name!r} (names are RFC 1123 labels); the original is kept in label {LABEL_NAME}",
        )
    return {
        "name": name,
        "display_name": meta.display_name,
        "description": _string(obj.spec, "description", f"{obj.path}.spec", report) or "",
        "labels": labels,
    }


def _import_slo(obj: _Object, ctx: _Context) -> list[SloSpec]:
    report = ctx.report
    errors_before = len(report.errors)
    path, spec = obj.path, obj.spec
    spec_path = f"{path}.spec"
    meta = _metadata(obj, report)
    _unknown_keys(spec, _SLO_SPEC_KEYS, spec_path, report)
    description = _string(spec, "description", spec_path, report) or ""
    service = _string(spec, "service", spec_path, report, required=True)
    ours = _our_annotations(meta.annotations, f"{path}.metadata.annotations", report)
    indicator = _slo_indicator(spec, spec_path, ctx, native="sli" in ours)
    window, window_labels = _time_window(spec.get("timeWindow"), f"{spec_path}.timeWindow", report)
    method = _budgeting_method(spec.get("budgetingMethod"), f"{spec_path}.budgetingMethod", report)
    threshold = indicator is not None and indicator.sli is None and "sli" not in ours
    objectives = _objectives(spec.get("objectives"), f"{spec_path}.objectives", method, threshold, report)
    alert_policies = spec.get("alertPolicies")
    if alert_policies:
        report.drop(
            f"{spec_path}.alertPolicies",
            "alert policies not imported: burn-rate alerts come from the SLO's alert tiers (multi-window, multi-burn-rate)",
        )
    if (
        len(report.errors) > errors_before
        or not service
        or indicator is None
        or window is None
        or method is None
    ):
        return []

    service_name = slugify_name(service)
    base_labels = dict(meta.labels)
    tier = _tier_label(meta, base_labels, f"{path}.metadata.labels.{TIER_LABEL}", ours, report)
    if tier is False:
        return []
    if tier:
        ours["tier"] = tier
    _list_labels(meta, base_labels)
    if service_name != service:
        base_labels[LABEL_SERVICE] = service
    for key, value in meta.annotations.items():
        if not key.startswith(ANNOTATION_PREFIX):
            base_labels[LABEL_ANNOTATION_PREFIX + key] = value
    base_labels.update(window_labels)
    base_labels.update({k: v for k, v in indicator.labels.items() if k != LABEL_INDICATOR_NAME})

    specs = []
    for index, objective in enumerate(objectives):
        if index == 0:
            original_name = meta.name
            display_name = meta.display_name
        else:
            suffix = (
                slugify_name(objective.display_name) if objective.display_name else f"objective-{index + 1}"
            )
            original_name = f"{meta.name}-{suffix}"
            display_name = (
                f"{meta.display_name} ({objective.display_name or suffix})" if meta.display_name else ""
            )
        name = slugify_name(original_name)
        if index > 0:
            report.drop(objective.path, f"one objective per SLO here: imported as a separate SLO {name!r}")
        elif name != original_name:
            report.drop(
                f"{path}.metadata.name",
                f"renamed to {name!r} (names are RFC 1123 labels); the original is kept in label {LABEL_NAME}",
            )
        labels = dict(base_labels)
        if name != original_name:
            labels[LABEL_NAME] = original_name
        if indicator.name and indicator.name != f"{original_name}-sli":
            labels[LABEL_INDICATOR_NAME] = indicator.name
        if objective.display_name:
            labels[LABEL_OBJECTIVE_DISPLAY_NAME] = objective.display_name
        if not threshold and objective.op is not None:
            labels[LABEL_OBJECTIVE_OP] = objective.op
        if threshold:
            # marks a latency SLI that came from a thresholdMetric, so the export gives that form back
            labels[LABEL_THRESHOLD_OP] = objective.op or "lte"
        sli = (
            indicator.sli
            if indicator.sli is not None
            else {"kind": "latency", "threshold_ms": objective.threshold_ms}
        )
        data: dict[str, Any] = {
            "name": name,
            "service": service_name,
            "display_name": display_name,
            "description": description,
            "sli": ours.get("sli", sli),
            "objective": objective.percent,
            "window": window,
            "budgeting_method": method,
            "timeslice_target": objective.timeslice_target,
            "labels": labels,
        }
        data.update({key: value for key, value in ours.items() if key != "sli"})
        parsed, problems = parse_slo_spec(data)
        if parsed is None:
            where = {
                "name": f"{path}.metadata.name",
                "service": f"{spec_path}.service",
                "display_name": f"{path}.metadata.displayName",
                "description": f"{spec_path}.description",
                "sli": indicator.path,
                "objective": objective.path,
                "window": f"{spec_path}.timeWindow[0]",
                "budgeting_method": f"{spec_path}.budgetingMethod",
                "timeslice_target": f"{objective.path}.timeSliceTarget",
                "spec": objective.path,
                "labels": f"{path}.metadata.labels",
            }
            for annotation, field_name in _ANNOTATION_FIELDS.items():
                if field_name in ours:
                    where[field_name] = f"{path}.metadata.annotations.{annotation}"
            for problem in problems:
                head = problem.path.split(".")[0].split("[")[0]
                report.error(
                    where.get(head, path),
                    f"{problem.path}: {problem.message}" if head != "spec" else problem.message,
                )
            continue
        specs.append(parsed)
    return specs


def _our_annotations(annotations: dict[str, str], path: str, report: _Report) -> dict[str, Any]:
    """Read back the fields our exporter wrote as annotations (raw: parse_slo_spec validates them)."""
    out: dict[str, Any] = {}
    for key, value in annotations.items():
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        field_name = _ANNOTATION_FIELDS.get(key)
        if field_name is None:
            report.drop(f"{path}.{key}", "unknown annotation of ours: ignored")
        elif field_name in ("alert_tiers", "sli"):
            try:
                out[field_name] = json.loads(value)
            except ValueError as exc:
                report.error(f"{path}.{key}", f"must be JSON: {exc}")
        elif field_name == "tier" and value == "":
            out["tier"] = None  # written by our export: no tier, and a `tier` label is a plain label
        else:
            out[field_name] = value
    return out


def _slo_indicator(spec: dict[Any, Any], spec_path: str, ctx: _Context, *, native: bool) -> _Indicator | None:
    report = ctx.report
    inline, ref = spec.get("indicator"), spec.get("indicatorRef")
    if inline is not None and ref is not None:
        report.error(f"{spec_path}.indicatorRef", "give indicator or indicatorRef, not both")
        return None
    if inline is not None:
        path = f"{spec_path}.indicator"
        if not isinstance(inline, dict):
            report.error(path, "must be a mapping with metadata and spec")
            return None
        _unknown_keys(inline, {"metadata", "spec"}, path, report)
        metadata = inline.get("metadata")
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            report.error(f"{path}.metadata", "must be a mapping")
            return None
        _unknown_keys(metadata, {"name", "displayName"}, f"{path}.metadata", report)
        name = _string(metadata, "name", f"{path}.metadata", report)
        display_name = _string(metadata, "displayName", f"{path}.metadata", report)
        return _indicator(inline.get("spec"), f"{path}.spec", name, display_name, ctx, native=native)
    if ref is not None:
        if not isinstance(ref, str) or ref not in ctx.slis:
            report.error(
                f"{spec_path}.indicatorRef",
                f"no SLI named {_show(ref)} in this file: include the SLI document (we do not resolve references across files)",
            )
            return None
        obj = ctx.slis[ref]
        ctx.used_slis.add(ref)
        meta = _metadata(obj, report)
        for key in (*meta.labels, *meta.annotations):
            report.drop(
                f"{obj.path}.metadata", f"SLI labels and annotations are not imported ({key!r} dropped)"
            )
        return _indicator(obj.spec, f"{obj.path}.spec", ref, meta.display_name or None, ctx, native=native)
    objectives = spec.get("objectives")
    if isinstance(objectives, list) and any(
        isinstance(o, dict) and ({"indicator", "indicatorRef", "compositeWeight"} & set(o))
        for o in objectives
    ):
        report.error(
            f"{spec_path}.objectives",
            "a composite SLO needs an indicator or indicatorRef in every objective (compositeWeight alone is not a composite)",
        )
        return None
    report.error(f"{spec_path}.indicator", "required: give indicator or indicatorRef")
    return None


def _indicator(
    spec: Any, path: str, name: str | None, display_name: str | None, ctx: _Context, *, native: bool
) -> _Indicator | None:
    report = ctx.report
    if not isinstance(spec, dict):
        report.error(path, "required: a mapping with ratioMetric or thresholdMetric")
        return None
    _unknown_keys(spec, _SLI_SPEC_KEYS, path, report)
    labels: dict[str, str] = {}
    if name:
        labels[LABEL_INDICATOR_NAME] = name
    if display_name:
        labels[LABEL_INDICATOR_DISPLAY_NAME] = display_name
    description = _string(spec, "description", path, report)
    if description:
        labels[LABEL_INDICATOR_DESCRIPTION] = description
    ratio, threshold = spec.get("ratioMetric"), spec.get("thresholdMetric")
    if (ratio is None) == (threshold is None):
        report.error(path, "needs exactly one of ratioMetric or thresholdMetric")
        return None
    if native:
        # our own export: the queries were generated from the telemetry contract and are regenerated
        report.drop(
            path,
            f"queries ignored: the SLI comes from annotation {ANNOTATION_SLI} (a native SLI kind whose queries follow the telemetry contract)",
        )
        return _Indicator(path, name, labels, {})
    if ratio is not None:
        sli = _ratio_metric(ratio, f"{path}.ratioMetric", labels, ctx)
        return None if sli is None else _Indicator(path, name, labels, sli)
    source = _metric_source(threshold, f"{path}.thresholdMetric", ctx, need_query=False)
    if source is None:
        return None
    _source_type_label([source], labels, report)
    if source.query:
        labels[LABEL_THRESHOLD_QUERY] = source.query
    report.drop(
        f"{path}.thresholdMetric",
        "thresholdMetric imported as a latency SLI: the objective's value is the threshold in milliseconds on the gateway latency histogram; the query is not evaluated (kept for export)",
    )
    return _Indicator(path, name, labels, None)


def _ratio_metric(ratio: Any, path: str, labels: dict[str, str], ctx: _Context) -> dict[str, Any] | None:
    report = ctx.report
    if not isinstance(ratio, dict):
        report.error(path, "must be a mapping with good or bad, and total")
        return None
    _unknown_keys(ratio, _RATIO_KEYS, path, report)
    if "raw" in ratio or "rawType" in ratio:
        report.error(
            f"{path}.raw", "precomputed ratios (raw) are not supported: give good or bad, and total counters"
        )
        return None
    counter = ratio.get("counter", True)
    if counter is not True:
        report.error(
            f"{path}.counter",
            "only counters are supported (counter: true): we take each query's increase per minute",
        )
        return None
    has_good, has_bad = ratio.get("good") is not None, ratio.get("bad") is not None
    if has_good == has_bad:
        report.error(path, "needs exactly one of good or bad")
        return None
    if ratio.get("total") is None:
        report.error(f"{path}.total", "required")
        return None
    numerator = "good" if has_good else "bad"
    sources = [
        _metric_source(ratio[numerator], f"{path}.{numerator}", ctx, need_query=True),
        _metric_source(ratio["total"], f"{path}.total", ctx, need_query=True),
    ]
    if None in sources:
        return None
    good_or_bad, total = sources
    assert good_or_bad is not None and total is not None
    if not _source_problems([good_or_bad, total], labels, ctx):
        return None
    _source_type_label([good_or_bad, total], labels, report)
    return {"kind": "custom", f"{numerator}_query": good_or_bad.query, "total_query": total.query}


def _tier_label(
    meta: _Meta, labels: dict[str, str], path: str, ours: dict[str, Any], report: _Report
) -> str | None | bool:
    """`labels.tier` (a string or a one-item list) naming one of our tiers scopes the SLO to it: the
    tier, None when there is no such label, False when the SLO must be refused."""
    value = labels.get(TIER_LABEL)
    if value is None or "tier" in ours:
        return None  # no label, or our own annotation says which tier (the label is then a plain one)
    items = value.split(",") if TIER_LABEL in meta.list_labels else [value]
    tiers = [item for item in items if item in TIERS]
    if not tiers:
        report.drop(
            path,
            f"{value!r} is not one of our tiers ({', '.join(TIERS)}): kept as a plain label; the SLO covers every tier its service runs on",
        )
        return None
    if len(items) > 1:
        report.error(
            path,
            f"an SLO here covers one tier, or every tier of its service: {value!r} names {len(items)}; import one SLO per tier or remove the label",
        )
        return False
    del labels[TIER_LABEL]
    if TIER_LABEL in meta.list_labels:
        meta.list_labels = [key for key in meta.list_labels if key != TIER_LABEL]
        labels[LABEL_TIER_LIST] = "list"
    return tiers[0]
