"""OpenSLO v1 import and export for SLO specs (pure: no Django).

`import_openslo` reads a multi-document YAML string and never raises: what it cannot import becomes an
error problem (with a path into the OpenSLO document, e.g. `documents[2].spec.timeWindow[0].duration`)
and what it parses but cannot express becomes a warning in `unsupported`; nothing is dropped silently.
`export_openslo` writes SloSpecs (and optional services) back as OpenSLO v1 documents.

Two kinds of bookkeeping make the round trip (OpenSLO -> spec -> OpenSLO -> spec) lossless where both
sides can express a thing:
- OpenSLO details our spec has no field for (the original name when slugify changed it, the indicator's
  name, the objective's displayName, a non-Prometheus source type, foreign annotations...) are kept in
  our `labels` under the reserved `openslo.` prefix, and only when they differ from what the exporter
  would write by default; the exporter consumes them instead of writing them as OpenSLO labels.
- Our fields OpenSLO has no field for (tier, min_valid_events, alert_tiers, a native SLI kind) go into
  `metadata.annotations` under `inference-slo-controlplane/`, which the importer reads back.
The mapping table is in docs/openslo.md.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import available_timezones

import yaml

from controlplane import safeload
from slo.spec import Problem, SloSpec, parse_slo_spec, slugify_name

logger = logging.getLogger(__name__)

API_VERSION = "openslo/v1"
KINDS = ("Service", "SLO", "SLI", "DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget")
ALERT_KINDS = ("AlertPolicy", "AlertCondition", "AlertNotificationTarget")

# Our labels under this prefix are import bookkeeping, never exported as OpenSLO labels.
RESERVED_LABEL_PREFIX = "openslo."
LABEL_NAME = "openslo.name"
LABEL_SERVICE = "openslo.service"
LABEL_INDICATOR_NAME = "openslo.indicator.name"
LABEL_INDICATOR_DISPLAY_NAME = "openslo.indicator.display-name"
LABEL_INDICATOR_DESCRIPTION = "openslo.indicator.description"
LABEL_OBJECTIVE_DISPLAY_NAME = "openslo.objective.display-name"
LABEL_SOURCE_TYPE = "openslo.metric-source.type"
LABEL_THRESHOLD_QUERY = "openslo.threshold.query"
LABEL_THRESHOLD_OP = "openslo.threshold.op"
LABEL_CALENDAR_START = "openslo.calendar.start-time"
LABEL_ANNOTATION_PREFIX = "openslo.annotation."

# Our annotations: fields of SloSpec that OpenSLO cannot hold.
ANNOTATION_PREFIX = "inference-slo-controlplane/"
ANNOTATION_TIER = ANNOTATION_PREFIX + "tier"
ANNOTATION_MIN_VALID_EVENTS = ANNOTATION_PREFIX + "min-valid-events"
ANNOTATION_ALERT_TIERS = ANNOTATION_PREFIX + "alert-tiers"
ANNOTATION_SLI = ANNOTATION_PREFIX + "sli"
_ANNOTATION_FIELDS = {
    ANNOTATION_TIER: "tier",
    ANNOTATION_MIN_VALID_EVENTS: "min_valid_events",
    ANNOTATION_ALERT_TIERS: "alert_tiers",
    ANNOTATION_SLI: "sli",
}

PROMETHEUS = "Prometheus"
# 2024-01-01 is a Monday and the first of a month: a start every calendar window of ours agrees with
# (ISO weeks, months from the 1st, local midnight), so it carries no extra information.
DEFAULT_CALENDAR_START = "2024-01-01 00:00:00"

_BUDGETING = {"occurrences": "occurrences", "timeslices": "timeslices", "ratiotimeslices": "ratio_timeslices"}
_BUDGETING_OUT = {"occurrences": "Occurrences", "timeslices": "Timeslices", "ratio_timeslices": "RatioTimeslices"}
_DURATION_RE = re.compile(r"^([1-9][0-9]{0,6})([mhdwMQY])$")
_MINUTES = {"m": 1, "h": 60, "d": 1440, "w": 10080}

_TOP_KEYS = {"apiVersion", "kind", "metadata", "spec"}
_METADATA_KEYS = {"name", "displayName", "labels", "annotations"}
_SLO_SPEC_KEYS = {
    "description", "service", "indicator", "indicatorRef", "timeWindow", "budgetingMethod", "objectives",
    "alertPolicies",
}
_SLI_SPEC_KEYS = {"description", "ratioMetric", "thresholdMetric"}
_RATIO_KEYS = {"counter", "good", "bad", "total", "raw", "rawType"}
_OBJECTIVE_KEYS = {"displayName", "op", "value", "target", "targetPercent", "timeSliceTarget", "timeSliceWindow"}
_WINDOW_KEYS = {"duration", "isRolling", "calendar"}

# Anything with .good/.bad/.total (slo.contract's sli_queries result) or a (good, bad, total) tuple.
QueriesFor = Callable[[SloSpec], Any]


@dataclass
class ImportResult:
    """What an OpenSLO file turned into. Refuse the import when `problems` is not empty."""

    services: list[dict[str, Any]] = field(default_factory=list)
    slos: list[SloSpec] = field(default_factory=list)
    # errors: an object (or the whole file) could not be imported; such an SLO is left out of `slos`
    problems: list[Problem] = field(default_factory=list)
    # warnings: parsed but not expressible here, so dropped (or not applied)
    unsupported: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Report:
    def __init__(self) -> None:
        self.errors: list[Problem] = []
        self.drops: list[Problem] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(Problem(path, message))

    def drop(self, path: str, message: str) -> None:
        self.drops.append(Problem(path, message, "warning"))


@dataclass
class _Object:
    path: str
    kind: str
    name: str
    metadata: dict[Any, Any]
    spec: dict[Any, Any]


@dataclass
class _Meta:
    name: str
    display_name: str
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass
class _Source:
    path: str
    query: str | None
    type: str | None


@dataclass
class _Indicator:
    path: str
    name: str | None
    labels: dict[str, str]
    # custom SLI fields for a ratioMetric; None for a thresholdMetric (a latency SLI per objective)
    sli: dict[str, Any] | None


@dataclass
class _Objective:
    path: str
    percent: float
    timeslice_target: float | None
    display_name: str
    threshold_ms: float | None
    op: str | None


@dataclass
class _Context:
    report: _Report
    slis: dict[str, _Object] = field(default_factory=dict)
    datasources: dict[str, _Object] = field(default_factory=dict)
    used_slis: set[str] = field(default_factory=set)


# --------------------------------------------------------------------------------------------- import


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
        obj = _envelope(document, f"documents[{index}]", report)
        if obj is not None:
            objects.append(obj)

    service_paths: dict[str, str] = {}
    for obj in objects:
        if obj.kind == "Service":
            service = _import_service(obj, report)
            if service["name"] in service_paths:
                report.error(f"{obj.path}.metadata.name", f"service {service['name']!r} is already defined in {service_paths[service['name']]}")
            else:
                service_paths[service["name"]] = obj.path
                result.services.append(service)
        elif obj.kind == "SLI":
            if obj.name in ctx.slis:
                report.error(f"{obj.path}.metadata.name", f"SLI {obj.name!r} is already defined in {ctx.slis[obj.name].path}")
            else:
                ctx.slis[obj.name] = obj
        elif obj.kind == "DataSource":
            ctx.datasources[obj.name] = obj
            report.drop(obj.path, f"DataSource {obj.name!r} not imported: connections are configured as telemetry sources; SLOs keep their queries")
        elif obj.kind in ALERT_KINDS:
            report.drop(obj.path, f"{obj.kind} {obj.name!r} not imported: burn-rate alerts come from each SLO's alert tiers")

    slo_paths: dict[str, str] = {}
    for obj in objects:
        if obj.kind != "SLO":
            continue
        for spec in _import_slo(obj, ctx):
            if spec.name in slo_paths:
                report.error(f"{obj.path}.metadata.name", f"SLO name {spec.name!r} is already used by {slo_paths[spec.name]}")
                continue
            slo_paths[spec.name] = obj.path
            result.slos.append(spec)

    for name, obj in ctx.slis.items():
        if name not in ctx.used_slis:
            report.drop(obj.path, f"SLI {name!r} is not referenced by any SLO in this file: not imported")
    return result


def _envelope(document: Any, path: str, report: _Report) -> _Object | None:
    if not isinstance(document, dict):
        report.error(path, f"must be a mapping (an OpenSLO object with apiVersion, kind, metadata and spec), got {_type_name(document)}")
        return None
    api_version = document.get("apiVersion")
    if api_version is None:
        report.error(f"{path}.apiVersion", f"required: {API_VERSION}")
        return None
    if api_version != API_VERSION:
        if isinstance(api_version, str) and api_version.startswith("openslo/v1alpha"):
            message = (f"{api_version} is not supported: only {API_VERSION} is. Upgrade the document "
                       "(v1alpha keeps queries in objectives[].ratioMetrics, v1 in spec.indicator)")
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
        report.error(f"{path}.metadata", "required: a mapping with a name" if metadata is None else "must be a mapping")
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
    labels = _labels(obj.metadata.get("labels"), f"{path}.labels", report)
    annotations = _annotations(obj.metadata.get("annotations"), f"{path}.annotations", report)
    return _Meta(obj.name, display_name, labels, annotations)


def _import_service(obj: _Object, report: _Report) -> dict[str, Any]:
    meta = _metadata(obj, report)
    _unknown_keys(obj.spec, {"description"}, f"{obj.path}.spec", report)
    labels = dict(meta.labels)
    for key, value in meta.annotations.items():
        if key.startswith(ANNOTATION_PREFIX):
            report.drop(f"{obj.path}.metadata.annotations.{key}", "annotation not used on a Service: dropped")
        else:
            labels[LABEL_ANNOTATION_PREFIX + key] = value
    name = slugify_name(obj.name)
    if name != obj.name:
        labels[LABEL_NAME] = obj.name
        report.drop(f"{obj.path}.metadata.name", f"renamed to {name!r} (names are RFC 1123 labels); the original is kept in label {LABEL_NAME}")
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
        report.drop(f"{spec_path}.alertPolicies", "alert policies not imported: burn-rate alerts come from the SLO's alert tiers (multi-window, multi-burn-rate)")
    if len(report.errors) > errors_before or not service or indicator is None or window is None or method is None:
        return []

    service_name = slugify_name(service)
    base_labels = dict(meta.labels)
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
            suffix = slugify_name(objective.display_name) if objective.display_name else f"objective-{index + 1}"
            original_name = f"{meta.name}-{suffix}"
            display_name = f"{meta.display_name} ({objective.display_name or suffix})" if meta.display_name else ""
        name = slugify_name(original_name)
        if index > 0:
            report.drop(objective.path, f"one objective per SLO here: imported as a separate SLO {name!r}")
        elif name != original_name:
            report.drop(f"{path}.metadata.name", f"renamed to {name!r} (names are RFC 1123 labels); the original is kept in label {LABEL_NAME}")
        labels = dict(base_labels)
        if name != original_name:
            labels[LABEL_NAME] = original_name
        if indicator.name and indicator.name != f"{original_name}-sli":
            labels[LABEL_INDICATOR_NAME] = indicator.name
        if objective.display_name:
            labels[LABEL_OBJECTIVE_DISPLAY_NAME] = objective.display_name
        if threshold:
            # marks a latency SLI that came from a thresholdMetric, so the export gives that form back
            labels[LABEL_THRESHOLD_OP] = objective.op or "lte"
        sli = indicator.sli if indicator.sli is not None else {"kind": "latency", "threshold_ms": objective.threshold_ms}
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
                report.error(where.get(head, path), f"{problem.path}: {problem.message}" if head != "spec" else problem.message)
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
            report.error(f"{spec_path}.indicatorRef", f"no SLI named {_show(ref)} in this file: include the SLI document (we do not resolve references across files)")
            return None
        obj = ctx.slis[ref]
        ctx.used_slis.add(ref)
        meta = _metadata(obj, report)
        for key in (*meta.labels, *meta.annotations):
            report.drop(f"{obj.path}.metadata", f"SLI labels and annotations are not imported ({key!r} dropped)")
        return _indicator(obj.spec, f"{obj.path}.spec", ref, meta.display_name or None, ctx, native=native)
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
        report.drop(path, f"queries ignored: the SLI comes from annotation {ANNOTATION_SLI} (a native SLI kind whose queries follow the telemetry contract)")
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
    report.drop(f"{path}.thresholdMetric", "thresholdMetric imported as a latency SLI: the objective's value is the threshold in milliseconds on the gateway latency histogram; the query is not evaluated (kept for export)")
    return _Indicator(path, name, labels, None)


def _ratio_metric(ratio: Any, path: str, labels: dict[str, str], ctx: _Context) -> dict[str, Any] | None:
    report = ctx.report
    if not isinstance(ratio, dict):
        report.error(path, "must be a mapping with good or bad, and total")
        return None
    _unknown_keys(ratio, _RATIO_KEYS, path, report)
    if "raw" in ratio or "rawType" in ratio:
        report.error(f"{path}.raw", "precomputed ratios (raw) are not supported: give good or bad, and total counters")
        return None
    counter = ratio.get("counter", True)
    if counter is not True:
        report.error(f"{path}.counter", "only counters are supported (counter: true): we take each query's increase per minute")
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
    _source_type_label([s for s in sources if s is not None], labels, report)
    good_or_bad, total = sources
    assert good_or_bad is not None and total is not None
    return {"kind": "custom", f"{numerator}_query": good_or_bad.query, "total_query": total.query}


def _metric_source(node: Any, path: str, ctx: _Context, *, need_query: bool) -> _Source | None:
    report = ctx.report
    if not isinstance(node, dict):
        report.error(path, "must be a mapping with a metricSource")
        return None
    _unknown_keys(node, {"metricSource"}, path, report)
    source = node.get("metricSource")
    path = f"{path}.metricSource"
    if not isinstance(source, dict):
        report.error(path, "required: a mapping with type and spec.query")
        return None
    _unknown_keys(source, {"metricSourceRef", "type", "spec"}, path, report)
    source_type = _string(source, "type", path, report)
    ref = source.get("metricSourceRef")
    if ref is not None:
        datasource = ctx.datasources.get(ref) if isinstance(ref, str) else None
        if source_type is None and datasource is not None and isinstance(datasource.spec.get("type"), str):
            source_type = datasource.spec["type"]
        report.drop(f"{path}.metricSourceRef", f"reference to DataSource {_show(ref)} dropped: connections are configured as telemetry sources")
    source_spec = source.get("spec")
    if not isinstance(source_spec, dict):
        if need_query:
            report.error(f"{path}.spec", "required: a mapping with a query")
            return None
        if source_spec is not None:
            report.drop(f"{path}.spec", "metric source spec not imported")
        return _Source(path, None, source_type)
    query = source_spec.get("query")
    if query is not None and not (isinstance(query, str) and query.strip()):
        report.error(f"{path}.spec.query", "must be a non-empty string")
        return None
    if query is None and need_query:
        report.error(f"{path}.spec.query", f"required: we need the query string (source type {source_type or 'not given'})")
        return None
    for key in source_spec:
        if key != "query":
            report.drop(f"{path}.spec.{key}", "metric source field not imported: only the query is kept")
    return _Source(path, query or None, source_type)


def _source_type_label(sources: list[_Source], labels: dict[str, str], report: _Report) -> None:
    types = []
    for source in sources:
        if source.type is None:
            report.drop(source.path, "no metric source type: the query is taken as PromQL")
        elif source.type.lower() != PROMETHEUS.lower():
            report.drop(f"{source.path}.type", f"metric source type {source.type!r} is not Prometheus: the query is imported unchanged as a custom query and must be PromQL to be measured")
        if source.type is not None and source.type not in types:
            types.append(source.type)
    if len(types) > 1:
        report.drop(sources[0].path, f"mixed metric source types {types}: exported back as {types[-1]!r}")
    if types and types[-1] != PROMETHEUS:
        labels[LABEL_SOURCE_TYPE] = types[-1]


def _time_window(node: Any, path: str, report: _Report) -> tuple[dict[str, Any] | None, dict[str, str]]:
    if node is None:
        report.error(path, "required: one rolling or calendar window")
        return None, {}
    if not isinstance(node, list) or not node:
        report.error(path, "must be a list with exactly one time window")
        return None, {}
    for index in range(1, len(node)):
        report.drop(f"{path}[{index}]", "only one time window per SLO: dropped")
    path = f"{path}[0]"
    window = node[0]
    if not isinstance(window, dict):
        report.error(path, "must be a mapping with duration")
        return None, {}
    _unknown_keys(window, _WINDOW_KEYS, path, report)
    duration = window.get("duration")
    match = _DURATION_RE.match(duration) if isinstance(duration, str) else None
    if match is None:
        report.error(f"{path}.duration", "required: a duration like 28d, 4w or 1M" if duration is None else f"{_show(duration)} is not a duration (a whole number and one of m h d w M Q Y, e.g. 28d)")
        return None, {}
    count, unit = int(match[1]), match[2]
    calendar = window.get("calendar")
    is_rolling = window.get("isRolling")
    if is_rolling is not None and not isinstance(is_rolling, bool):
        report.error(f"{path}.isRolling", "must be true or false")
        return None, {}
    if is_rolling is None:
        is_rolling = calendar is None

    if is_rolling:
        if calendar is not None:
            report.drop(f"{path}.calendar", "a rolling window has no calendar: ignored")
        minutes = count * _MINUTES.get(unit, 0)
        if not minutes or minutes % 1440:
            report.error(f"{path}.duration", f"rolling windows are whole days (e.g. 28d, 4w): {_show(duration)} is not")
            return None, {}
        days = minutes // 1440
        if days > 400:
            report.error(f"{path}.duration", "rolling windows are at most 400 days")
            return None, {}
        return {"type": "rolling", "days": days}, {}

    if duration == "1w":
        calendar_unit = "week"
    elif duration in ("1M", "1m"):
        calendar_unit = "month"
        if duration == "1m":
            report.drop(f"{path}.duration", "'1m' means one minute in OpenSLO; a one-minute calendar window is meaningless, so it is read as one month (1M)")
    else:
        report.error(f"{path}.duration", f"calendar windows are one week (1w) or one month (1M), not {_show(duration)}")
        return None, {}
    if calendar is None:
        calendar = {}
    if not isinstance(calendar, dict):
        report.error(f"{path}.calendar", "must be a mapping with startTime and timeZone")
        return None, {}
    _unknown_keys(calendar, {"startTime", "timeZone"}, f"{path}.calendar", report)
    timezone = _string(calendar, "timeZone", f"{path}.calendar", report) or "UTC"
    zones = _time_zones()
    if zones and timezone not in zones:
        report.error(f"{path}.calendar.timeZone", f"unknown time zone {timezone!r} (an IANA name like Europe/Paris)")
        return None, {}
    labels = {}
    start = calendar.get("startTime")
    if start is not None:
        start_text = str(start).strip()
        try:
            start_at = datetime.fromisoformat(start_text)
        except ValueError:
            report.drop(f"{path}.calendar.startTime", f"{_show(start_text)} is not a date and time: ignored")
        else:
            aligned = (start_at.hour, start_at.minute, start_at.second, start_at.microsecond) == (0, 0, 0, 0) and (
                start_at.day == 1 if calendar_unit == "month" else start_at.isoweekday() == 1
            )
            if not aligned:
                labels[LABEL_CALENDAR_START] = start_text
                first = "the first of the month" if calendar_unit == "month" else "Monday (ISO weeks)"
                report.drop(f"{path}.calendar.startTime", f"not applied: our calendar {calendar_unit}s start at local midnight on {first} (kept for export)")
    return {"type": "calendar", "unit": calendar_unit, "timezone": timezone}, labels


@functools.cache
def _time_zones() -> frozenset[str]:
    # empty when the system has no tz database: then we cannot check names and accept them
    return frozenset(available_timezones())


def _budgeting_method(value: Any, path: str, report: _Report) -> str | None:
    method = _BUDGETING.get(value.lower()) if isinstance(value, str) else None
    if method is None:
        message = "required" if value is None else f"unknown budgeting method {_show(value)}"
        report.error(path, f"{message}: Occurrences, Timeslices or RatioTimeslices")
    return method


def _objectives(node: Any, path: str, method: str | None, threshold: bool, report: _Report) -> list[_Objective]:
    if node is None:
        report.error(path, "required: at least one objective")
        return []
    if not isinstance(node, list) or not node:
        report.error(path, "must be a non-empty list")
        return []
    out = []
    for index, objective in enumerate(node):
        parsed = _objective(objective, f"{path}[{index}]", method, threshold, report)
        if parsed is not None:
            out.append(parsed)
    return out


def _objective(node: Any, path: str, method: str | None, threshold: bool, report: _Report) -> _Objective | None:
    if not isinstance(node, dict):
        report.error(path, "must be a mapping with target or targetPercent")
        return None
    errors_before = len(report.errors)
    _unknown_keys(node, _OBJECTIVE_KEYS, path, report)
    display_name = _string(node, "displayName", path, report) or ""
    target, target_percent = node.get("target"), node.get("targetPercent")
    percent = None
    if target is None and target_percent is None:
        report.error(f"{path}.target", "required: target (0-1) or targetPercent (0-100)")
    elif target is not None:
        if not _is_number(target) or not 0 < target < 1:
            report.error(f"{path}.target", f"must be a number between 0 and 1, exclusive (0.999 is 99.9%), got {_show(target)}")
        else:
            percent = _percent_from_target(target)
            if percent <= 0 or percent >= 100:
                report.error(f"{path}.target", f"{_show(target)} is too close to 0 or 1")
        if target_percent is not None and percent is not None and target_percent != percent:
            report.error(f"{path}.targetPercent", "give target or targetPercent, not both")
    elif not _is_number(target_percent) or not 0 < target_percent < 100:
        report.error(f"{path}.targetPercent", f"must be a number between 0 and 100, exclusive, got {_show(target_percent)}")
    else:
        percent = float(target_percent)

    op, value = node.get("op"), node.get("value")
    threshold_ms = None
    if threshold:
        if op not in (None, "lt", "lte", "gt", "gte"):
            report.error(f"{path}.op", f"unknown op {_show(op)}: lt, lte, gt or gte")
        elif op in ("gt", "gte"):
            report.error(f"{path}.op", f"op {op} cannot be expressed: a latency SLI counts values at or under the threshold (use lt or lte)")
        elif op == "lt":
            report.drop(f"{path}.op", "op lt is applied as lte: a histogram bucket's upper bound counts as good")
        if value is None:
            report.error(f"{path}.value", "required with a thresholdMetric: the threshold (milliseconds)")
        elif not _is_number(value) or value <= 0:
            report.error(f"{path}.value", f"must be a positive number (milliseconds), got {_show(value)}")
        else:
            threshold_ms = float(value)
    else:
        for key in ("op", "value"):
            if node.get(key) is not None:
                report.drop(f"{path}.{key}", f"{key} applies only to a thresholdMetric: ignored")

    timeslice_target = node.get("timeSliceTarget")
    if timeslice_target is not None and method != "timeslices":
        report.drop(f"{path}.timeSliceTarget", f"used only with Timeslices budgeting: ignored with {_BUDGETING_OUT.get(method or '', 'this method')}")
        timeslice_target = None
    elif timeslice_target is None and method == "timeslices":
        report.error(f"{path}.timeSliceTarget", "required with Timeslices budgeting")
    elif timeslice_target is not None and (not _is_number(timeslice_target) or not 0 < timeslice_target <= 1):
        report.error(f"{path}.timeSliceTarget", f"must be a number in (0, 1], got {_show(timeslice_target)}")
    window = node.get("timeSliceWindow")
    if window is not None:
        if method == "occurrences":
            report.drop(f"{path}.timeSliceWindow", "used only with time-slice budgeting: ignored with Occurrences")
        elif _slice_minutes(window) != 1:
            report.drop(f"{path}.timeSliceWindow", f"not applied: our time slices are one minute, not {_show(window)}")
    if len(report.errors) > errors_before or percent is None:
        return None
    return _Objective(path, percent, float(timeslice_target) if timeslice_target is not None else None,
                      display_name, threshold_ms, op)


def _slice_minutes(value: Any) -> float | None:
    if _is_number(value):  # a bare number is minutes
        return float(value)
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if match is None or match[2] not in _MINUTES:
        return None
    return int(match[1]) * _MINUTES[match[2]]


def _percent_from_target(target: float) -> float:
    # 0.999 * 100 is 99.9 but 0.57 * 100 is 56.99999999999999: round off the float noise
    return round(target * 100, 10)


def _labels(node: Any, path: str, report: _Report) -> dict[str, str]:
    """OpenSLO labels (string or list-of-strings values) as our flat string labels."""
    if node is None:
        return {}
    if not isinstance(node, dict):
        report.drop(path, "labels must be a mapping: dropped")
        return {}
    out = {}
    for raw_key, value in node.items():
        key = _scalar_text(raw_key) if raw_key is not None else None
        key_path = f"{path}.{key}"
        if key is None:
            report.drop(path, "a label name must be a string: dropped")
        elif key.startswith(RESERVED_LABEL_PREFIX):
            report.drop(key_path, f"label names starting with {RESERVED_LABEL_PREFIX!r} are reserved for import bookkeeping: dropped")
        elif (text := _scalar_text(value)) is not None:
            out[key] = text
        elif isinstance(value, list) and all(_scalar_text(item) is not None for item in value):
            out[key] = ",".join(str(_scalar_text(item)) for item in value)
            if len(value) != 1:
                report.drop(key_path, f"a list of values is flattened to {out[key]!r} (our labels hold one string)")
        else:
            report.drop(key_path, "a label value must be a string or a list of strings: dropped")
    return out


def _annotations(node: Any, path: str, report: _Report) -> dict[str, str]:
    if node is None:
        return {}
    if not isinstance(node, dict):
        report.drop(path, "annotations must be a mapping: dropped")
        return {}
    out = {}
    for key, value in node.items():
        key_text, text = _scalar_text(key), _scalar_text(value)
        if key is None or key_text is None or text is None:
            report.drop(f"{path}.{_key(key)}", "an annotation must map a string to a string: dropped")
        else:
            out[key_text] = text
    return out


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return None if value != value or abs(value) > 1e300 else str(value)  # NaN, or too long to print
    if value is None:
        return ""
    return None


def _string(node: dict[Any, Any], key: str, path: str, report: _Report, *, required: bool = False) -> str | None:
    value = node.get(key)
    if value is None or (required and isinstance(value, str) and not value.strip()):
        if required:
            report.error(f"{path}.{key}", "required")
        return None
    if not isinstance(value, str):
        report.error(f"{path}.{key}", f"must be a string, got {_type_name(value)}")
        return None
    # unstripped: SloSpec strips, and pydantic's whitespace is not Python's (str.strip eats "\x1f")
    return value


def _unknown_keys(node: dict[Any, Any], known: set[str], path: str, report: _Report) -> None:
    for key in node:
        if key not in known:
            report.drop(f"{path}.{_key(key)}", "unknown field: ignored")


def _is_number(value: Any) -> bool:
    """A finite int or float (YAML gives NaN, .inf and arbitrarily large ints too)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _show(value: Any) -> str:
    """A value for a message: short, and safe for ints too large for str() (Python 3.11 limits those)."""
    try:
        text = repr(value)
    except ValueError:
        return "a very large number"
    return text if len(text) <= 80 else text[:77] + "..."


def _key(key: Any) -> str:
    return key if isinstance(key, str) else _show(key)


def _type_name(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------------------------- export


def export_openslo(
    slos: list[SloSpec], services: list[dict[str, Any]] | None = None, queries_for: QueriesFor | None = None
) -> str:
    """OpenSLO v1 YAML for the SLOs (Service documents first). Raises ValueError if one can't be exported."""
    text, problems = export_openslo_with_report(slos, services, queries_for)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ValueError("; ".join(f"{p.path}: {p.message}" for p in errors))
    return text


def export_openslo_with_report(
    slos: list[SloSpec], services: list[dict[str, Any]] | None = None, queries_for: QueriesFor | None = None
) -> tuple[str, list[Problem]]:
    """OpenSLO v1 YAML plus problems: errors for SLOs left out, warnings for fields not written.

    `queries_for(spec)` gives the PromQL (good, bad, total) of a native SLI kind (latency, availability...),
    e.g. slo.contract.sli_queries; without it only custom SLIs and latency SLIs imported from a
    thresholdMetric can be exported.
    """
    report = _Report()
    documents = []
    for index, service in enumerate(services or []):
        document = _export_service(service, f"services[{index}]", report)
        if document is not None:
            documents.append(document)
    for index, spec in enumerate(slos):
        document = _export_slo(spec, f"slos[{index}]", queries_for, report)
        if document is not None:
            documents.append(document)
    text = yaml.dump_all(
        documents, Dumper=_Dumper, sort_keys=False, allow_unicode=True, explicit_start=True, width=120
    )
    return text, report.errors + report.drops


class _Dumper(yaml.SafeDumper):
    """Safe YAML that keeps every string intact.

    PyYAML may put a NEL or a Unicode line/paragraph separator inside a single-quoted or plain
    scalar, where YAML folds it into a space on reading; double quotes escape them instead.
    """


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if any(char in value for char in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _export_service(service: dict[str, Any], path: str, report: _Report) -> dict[str, Any] | None:
    name = service.get("name")
    if not isinstance(name, str) or not name:
        report.error(f"{path}.name", "required")
        return None
    labels = dict(service.get("labels") or {})
    metadata = _export_metadata(labels.pop(LABEL_NAME, name), service.get("display_name") or "", labels, {}, path, report)
    spec = {"description": service["description"]} if service.get("description") else {}
    return {"apiVersion": API_VERSION, "kind": "Service", "metadata": metadata, "spec": spec}


def _export_metadata(
    name: str, display_name: str, labels: dict[str, str], annotations: dict[str, str], path: str, report: _Report
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if display_name:
        metadata["displayName"] = display_name
    plain, foreign = {}, {}
    for key, value in labels.items():
        if key.startswith(LABEL_ANNOTATION_PREFIX):
            foreign[key.removeprefix(LABEL_ANNOTATION_PREFIX)] = value
        elif key.startswith(RESERVED_LABEL_PREFIX):
            report.drop(f"{path}.labels.{key}", "reserved bookkeeping label not used by the export: not written")
        else:
            plain[key] = value
    if plain:
        metadata["labels"] = plain
    if foreign or annotations:
        metadata["annotations"] = {**foreign, **annotations}
    return metadata


def _export_slo(spec: SloSpec, path: str, queries_for: QueriesFor | None, report: _Report) -> dict[str, Any] | None:
    labels = dict(spec.labels)
    name = labels.pop(LABEL_NAME, spec.name)
    service = labels.pop(LABEL_SERVICE, spec.service)
    indicator_name = labels.pop(LABEL_INDICATOR_NAME, f"{name}-sli")
    indicator_display_name = labels.pop(LABEL_INDICATOR_DISPLAY_NAME, "")
    indicator_description = labels.pop(LABEL_INDICATOR_DESCRIPTION, "")
    objective_display_name = labels.pop(LABEL_OBJECTIVE_DISPLAY_NAME, "")
    source_type = labels.pop(LABEL_SOURCE_TYPE, PROMETHEUS)
    threshold_query = labels.pop(LABEL_THRESHOLD_QUERY, None)
    threshold_op = labels.pop(LABEL_THRESHOLD_OP, None)
    calendar_start = labels.pop(LABEL_CALENDAR_START, DEFAULT_CALENDAR_START)

    annotations: dict[str, str] = {}
    if spec.tier is not None:
        annotations[ANNOTATION_TIER] = spec.tier
    if spec.min_valid_events != 1:
        annotations[ANNOTATION_MIN_VALID_EVENTS] = str(spec.min_valid_events)
    if spec.alert_tiers is not None:
        annotations[ANNOTATION_ALERT_TIERS] = json.dumps([tier.model_dump() for tier in spec.alert_tiers])

    objective: dict[str, Any] = {}
    if objective_display_name:
        objective["displayName"] = objective_display_name
    sli = spec.sli
    if sli.kind == "custom":
        numerator = "good" if sli.good_query else "bad"
        metric = {"ratioMetric": {
            "counter": True,
            numerator: _export_source(source_type, sli.good_query or sli.bad_query),
            "total": _export_source(source_type, sli.total_query),
        }}
    elif sli.kind == "latency" and threshold_op is not None:
        # imported from a thresholdMetric: give it back in that form
        metric = {"thresholdMetric": _export_source(source_type, threshold_query)}
        objective["op"] = threshold_op or "lte"
        objective["value"] = _plain_number(sli.threshold_ms or 0)
    else:
        queries = _native_queries(spec, queries_for)
        if queries is None:
            report.error(path, f"a {sli.kind} SLI needs queries_for (the telemetry contract's queries) to be exported")
            return None
        numerator, query, total = queries
        annotations[ANNOTATION_SLI] = json.dumps(sli.model_dump(exclude_none=True), sort_keys=True)
        metric = {"ratioMetric": {
            "counter": True, numerator: _export_source(PROMETHEUS, query), "total": _export_source(PROMETHEUS, total),
        }}

    target = spec.objective / 100
    if _percent_from_target(target) == spec.objective:
        objective["target"] = target
    else:  # a percentage that does not survive the division: write it as is
        objective["targetPercent"] = spec.objective
    if spec.budgeting_method == "timeslices":
        objective["timeSliceTarget"] = spec.timeslice_target
    elif spec.timeslice_target is not None:
        report.drop(f"{path}.timeslice_target", f"used only with timeslices budgeting: not written for {spec.budgeting_method}")
    if spec.budgeting_method != "occurrences":
        objective["timeSliceWindow"] = "1m"

    if spec.window.type == "rolling":
        window: dict[str, Any] = {"duration": f"{spec.window.days}d", "isRolling": True}
    else:
        window = {
            "duration": "1w" if spec.window.unit == "week" else "1M",
            "isRolling": False,
            "calendar": {"startTime": calendar_start, "timeZone": spec.window.timezone},
        }
    indicator_metadata = {"name": indicator_name}
    if indicator_display_name:
        indicator_metadata["displayName"] = indicator_display_name
    indicator_spec = {"description": indicator_description} if indicator_description else {}
    indicator_spec.update(metric)

    slo_spec: dict[str, Any] = {}
    if spec.description:
        slo_spec["description"] = spec.description
    slo_spec.update({
        "service": service,
        "indicator": {"metadata": indicator_metadata, "spec": indicator_spec},
        "timeWindow": [window],
        "budgetingMethod": _BUDGETING_OUT[spec.budgeting_method],
        "objectives": [objective],
    })
    metadata = _export_metadata(name, spec.display_name, labels, annotations, path, report)
    return {"apiVersion": API_VERSION, "kind": "SLO", "metadata": metadata, "spec": slo_spec}


def _native_queries(spec: SloSpec, queries_for: QueriesFor | None) -> tuple[str, str, str] | None:
    """(numerator name, its query, total query) from the callback, or None."""
    if queries_for is None:
        return None
    queries = queries_for(spec)
    if queries is None:
        return None
    if hasattr(queries, "total"):
        good, bad, total = getattr(queries, "good", None), getattr(queries, "bad", None), queries.total
    else:
        good, bad, total = queries
    if not total or not (good or bad):
        return None
    return ("good", good, total) if good else ("bad", bad, total)


def _export_source(source_type: str, query: str | None) -> dict[str, Any]:
    source: dict[str, Any] = {"type": source_type}
    if query is not None:
        source["spec"] = {"query": query}
    return {"metricSource": source}


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
