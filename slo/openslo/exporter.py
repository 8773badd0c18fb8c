"""OpenSLO v1 export: SloSpecs (and services) to YAML, with a report of what was not written (pure)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import yaml

from slo.openslo.mapping import (
    _BUDGETING_OUT,
    ANNOTATION_ALERT_TIERS,
    ANNOTATION_MIN_VALID_EVENTS,
    ANNOTATION_SERVICE_CLASS,
    ANNOTATION_SLI,
    ANNOTATION_TIER,
    API_VERSION,
    DEFAULT_CALENDAR_START,
    LABEL_ANNOTATION_PREFIX,
    LABEL_CALENDAR_START,
    LABEL_INDICATOR_DESCRIPTION,
    LABEL_INDICATOR_DISPLAY_NAME,
    LABEL_INDICATOR_NAME,
    LABEL_LIST_LABELS,
    LABEL_NAME,
    LABEL_OBJECTIVE_DISPLAY_NAME,
    LABEL_OBJECTIVE_OP,
    LABEL_SERVICE,
    LABEL_SOURCE_REF,
    LABEL_SOURCE_TYPE,
    LABEL_THRESHOLD_OP,
    LABEL_THRESHOLD_QUERY,
    LABEL_THRESHOLD_SOURCE_SPEC,
    LABEL_TIER_LIST,
    LABEL_WINDOW_DURATION,
    PROMETHEUS,
    RESERVED_LABEL_PREFIX,
    TIER_LABEL,
    QueriesFor,
    _Report,
)
from slo.openslo.windows import _aligned, _percent_from_target, _start_wall_time, _window_days
from slo.spec import TIERS, Problem, SloSpec


def export_openslo(
    slos: list[SloSpec],
    services: list[dict[str, Any]] | None = None,
    queries_for: QueriesFor | None = None,
    data_sources: list[dict[str, Any]] | None = None,
) -> str:
    """OpenSLO v1 YAML for the SLOs (Service documents first). Raises ValueError if one can't be exported."""
    text, problems = export_openslo_with_report(slos, services, queries_for, data_sources)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ValueError("; ".join(f"{p.path}: {p.message}" for p in errors))
    return text


def export_openslo_with_report(
    slos: list[SloSpec],
    services: list[dict[str, Any]] | None = None,
    queries_for: QueriesFor | None = None,
    data_sources: list[dict[str, Any]] | None = None,
) -> tuple[str, list[Problem]]:
    """OpenSLO v1 YAML plus problems: errors for SLOs left out, warnings for fields not written.

    `queries_for(spec)` gives the PromQL (good, bad, total) of a native SLI kind (latency, availability...),
    e.g. slo.contract.sli_queries; without it only custom SLIs and latency SLIs imported from a
    thresholdMetric can be exported. `data_sources` (name, url, tier) are written as DataSource
    documents of type Prometheus, after the services: the sources `metricSourceRef`s name. Their
    credentials and headers are never written.
    """
    report = _Report()
    documents = []
    for index, service in enumerate(services or []):
        document = _export_service(service, f"services[{index}]", report)
        if document is not None:
            documents.append(document)
    for source in data_sources or []:
        documents.append(_export_datasource(source))
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
    metadata = _export_metadata(
        labels.pop(LABEL_NAME, name), service.get("display_name") or "", labels, {}, path, report
    )
    spec = {"description": service["description"]} if service.get("description") else {}
    return {"apiVersion": API_VERSION, "kind": "Service", "metadata": metadata, "spec": spec}


def _export_metadata(
    name: str,
    display_name: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    path: str,
    report: _Report,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if display_name:
        metadata["displayName"] = display_name
    plain: dict[str, Any] = {}
    foreign = {}
    lists = set(labels.pop(LABEL_LIST_LABELS, "").split(",")) - {""}
    for key, value in labels.items():
        if key in lists:
            plain[key] = value.split(",") if value else []
        elif key.startswith(LABEL_ANNOTATION_PREFIX):
            foreign[key.removeprefix(LABEL_ANNOTATION_PREFIX)] = value
        elif key.startswith(RESERVED_LABEL_PREFIX):
            report.drop(
                f"{path}.labels.{key}", "reserved bookkeeping label not used by the export: not written"
            )
        else:
            plain[key] = value
    if plain:
        metadata["labels"] = plain
    if foreign or annotations:
        metadata["annotations"] = {**foreign, **annotations}
    return metadata


def _export_slo(
    spec: SloSpec, path: str, queries_for: QueriesFor | None, report: _Report
) -> dict[str, Any] | None:
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
    calendar_start = _calendar_start(spec, labels.pop(LABEL_CALENDAR_START, None))
    source_ref = labels.pop(LABEL_SOURCE_REF, None)
    window_duration = labels.pop(LABEL_WINDOW_DURATION, None)
    objective_op = labels.pop(LABEL_OBJECTIVE_OP, None)
    tier_as_list = labels.pop(LABEL_TIER_LIST, None) == "list"
    threshold_spec = labels.pop(LABEL_THRESHOLD_SOURCE_SPEC, None)

    annotations: dict[str, str] = {}
    if spec.tier is None and labels.get(TIER_LABEL) in TIERS:
        annotations[ANNOTATION_TIER] = ""  # a plain label that only looks like a tier: no scoping
    if spec.tier is not None:
        if TIER_LABEL in labels:
            annotations[ANNOTATION_TIER] = spec.tier  # a free label of that name is already there
        else:
            labels[TIER_LABEL] = spec.tier
            if tier_as_list:
                lists = [key for key in labels.get(LABEL_LIST_LABELS, "").split(",") if key]
                labels[LABEL_LIST_LABELS] = ",".join([*lists, TIER_LABEL])
    if spec.service_class is not None:
        annotations[ANNOTATION_SERVICE_CLASS] = spec.service_class
    if spec.min_valid_events != 1:
        annotations[ANNOTATION_MIN_VALID_EVENTS] = str(spec.min_valid_events)
    if spec.alert_tiers is not None:
        annotations[ANNOTATION_ALERT_TIERS] = json.dumps([tier.model_dump() for tier in spec.alert_tiers])

    objective: dict[str, Any] = {}
    if objective_display_name:
        objective["displayName"] = objective_display_name
    if objective_op in ("lt", "lte", "gt", "gte") and spec.sli.kind != "latency":
        objective["op"] = objective_op
    sli = spec.sli
    if sli.kind == "custom":
        numerator = "good" if sli.good_query else "bad"
        metric = {
            "ratioMetric": {
                "counter": True,
                numerator: _export_source(source_type, sli.good_query or sli.bad_query, source_ref),
                "total": _export_source(source_type, sli.total_query, source_ref),
            }
        }
    elif sli.kind == "latency" and threshold_op is not None:
        # imported from a thresholdMetric: give it back in that form
        metric = {"thresholdMetric": _export_source(source_type, threshold_query, source_ref, threshold_spec)}
        objective["op"] = threshold_op or "lte"
        objective["value"] = _plain_number(sli.threshold_ms or 0)
    else:
        queries = _native_queries(spec, queries_for)
        if queries is None:
            report.error(
                path, f"a {sli.kind} SLI needs queries_for (the telemetry contract's queries) to be exported"
            )
            return None
        numerator, query, total = queries
        annotations[ANNOTATION_SLI] = json.dumps(sli.model_dump(exclude_none=True), sort_keys=True)
        metric = {
            "ratioMetric": {
                "counter": True,
                numerator: _export_source(PROMETHEUS, query),
                "total": _export_source(PROMETHEUS, total),
            }
        }

    target = spec.objective / 100
    if _percent_from_target(target) == spec.objective:
        objective["target"] = target
    else:  # a percentage that does not survive the division: write it as is
        objective["targetPercent"] = spec.objective
    if spec.budgeting_method == "timeslices":
        objective["timeSliceTarget"] = spec.timeslice_target
    elif spec.timeslice_target is not None:
        report.drop(
            f"{path}.timeslice_target",
            f"used only with timeslices budgeting: not written for {spec.budgeting_method}",
        )
    if spec.budgeting_method != "occurrences":
        objective["timeSliceWindow"] = "1m"

    if spec.window.type == "rolling":
        duration = f"{spec.window.days}d"
        if window_duration and _window_days(window_duration) == spec.window.days:
            duration = window_duration  # `2w` stays `2w`
        window: dict[str, Any] = {"duration": duration, "isRolling": True}
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
    slo_spec.update(
        {
            "service": service,
            "indicator": {"metadata": indicator_metadata, "spec": indicator_spec},
            "timeWindow": [window],
            "budgetingMethod": _BUDGETING_OUT[spec.budgeting_method],
            "objectives": [objective],
        }
    )
    metadata = _export_metadata(name, spec.display_name, labels, annotations, path, report)
    return {"apiVersion": API_VERSION, "kind": "SLO", "metadata": metadata, "spec": slo_spec}


def _calendar_start(spec: SloSpec, written: str | None) -> str:
    """startTime: the text the file gave when it still means the window's start, else ours."""
    if spec.window.type != "calendar":
        return DEFAULT_CALENDAR_START
    ours = spec.window.start or DEFAULT_CALENDAR_START
    if written is not None:
        wall = _start_wall_time(written, spec.window.timezone)
        if wall is not None and (
            wall == datetime.fromisoformat(spec.window.start)
            if spec.window.start
            else _aligned(wall, spec.window.unit)
        ):
            return written
    return ours


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


def _export_datasource(source: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": source["name"]}
    if source.get("tier"):
        metadata["labels"] = {TIER_LABEL: source["tier"]}
    spec: dict[str, Any] = {"type": PROMETHEUS}
    if source.get("url"):
        spec["connectionDetails"] = {"url": source["url"]}
    return {"apiVersion": API_VERSION, "kind": "DataSource", "metadata": metadata, "spec": spec}


def _export_source(
    source_type: str, query: str | None, ref: str | None = None, extra_json: str | None = None
) -> dict[str, Any]:
    source: dict[str, Any] = {"metricSourceRef": ref} if ref else {}
    source["type"] = source_type
    spec: dict[str, Any] = {}
    if query is not None:
        spec["query"] = query
    if extra_json:
        try:
            extra = json.loads(extra_json)
        except ValueError:
            extra = None
        if isinstance(extra, dict):
            spec.update(extra)
    if spec:
        source["spec"] = spec
    return {"metricSource": source}


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
