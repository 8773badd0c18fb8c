"""OpenSLO metric sources and DataSources, read into our terms (pure: no Django).

A ratio SLI is pulled from a Prometheus-compatible query API, so its metric source must be Prometheus
(given as `type`, or through `metricSourceRef` to a DataSource of that type) and its queries must have
an exact per-minute count (slo.promql); anything else would sit at no data forever and is refused. A
`metricSourceRef` is kept (label `openslo.metric-source.ref`): the catalog maps it to the telemetry
source of that name. DataSource documents are read as name, type and URL for that mapping.
"""

from __future__ import annotations

import json
from typing import Any

from slo.openslo.mapping import (
    LABEL_SOURCE_REF,
    LABEL_SOURCE_TYPE,
    LABEL_THRESHOLD_SOURCE_SPEC,
    PROMETHEUS,
    _Context,
    _labels,
    _Object,
    _Report,
    _show,
    _Source,
    _string,
    _unknown_keys,
)
from slo.promql import query_problem
from slo.spec import TIERS


def _import_datasource(obj: _Object, report: _Report) -> dict[str, Any]:
    """name, type, url (from connectionDetails, a mapping or a list of one-key mappings), path."""
    path = f"{obj.path}.spec"
    _unknown_keys(obj.spec, {"type", "connectionDetails", "description"}, path, report)
    labels = _labels(obj.metadata.get("labels"), f"{obj.path}.metadata.labels", report, [])
    for key in labels:
        if key != "tier":
            report.drop(
                f"{obj.path}.metadata.labels.{key}", "DataSource labels other than tier are not imported"
            )
    if obj.metadata.get("annotations"):
        report.drop(f"{obj.path}.metadata.annotations", "DataSource annotations are not imported")
    if obj.metadata.get("displayName"):
        report.drop(f"{obj.path}.metadata.displayName", "DataSource display names are not imported")
    source_type = _string(obj.spec, "type", path, report) or ""
    details = obj.spec.get("connectionDetails")
    merged: dict[str, Any] = {}
    if isinstance(details, dict):
        merged = dict(details)
    elif isinstance(details, list):
        for item in details:
            if isinstance(item, dict):
                merged.update(item)
    url = merged.get("url") if isinstance(merged.get("url"), str) else ""
    other = sorted(str(key) for key in merged if key != "url")
    if other:
        # credentials belong in the telemetry source, entered there: never read from a file
        report.drop(
            f"{path}.connectionDetails",
            f"not imported: {', '.join(other)} (set credentials on the telemetry source)",
        )
    tier = labels.get("tier") if labels.get("tier") in TIERS else None
    return {"name": obj.name, "type": source_type, "url": url, "path": obj.path, "tier": tier}


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
        if not isinstance(ref, str) or not ref.strip():
            report.error(f"{path}.metricSourceRef", "must be the name of a DataSource")
            return None
        datasource = ctx.datasources.get(ref)
        if source_type is None and datasource is not None and isinstance(datasource.spec.get("type"), str):
            source_type = datasource.spec["type"]
    source_spec = source.get("spec")
    if not isinstance(source_spec, dict):
        if need_query:
            report.error(f"{path}.spec", "required: a mapping with a query")
            return None
        if source_spec is not None:
            report.drop(f"{path}.spec", "metric source spec not imported: not a mapping")
        return _Source(path, None, source_type, ref)
    query = source_spec.get("query")
    if query is not None and not (isinstance(query, str) and query.strip()):
        report.error(f"{path}.spec.query", "must be a non-empty string")
        return None
    if query is None and need_query:
        report.error(
            f"{path}.spec.query",
            f"required: we need the query string (source type {source_type or 'not given'})",
        )
        return None
    extra = {key: value for key, value in source_spec.items() if key != "query"}
    source_obj = _Source(path, query or None, source_type, ref)
    if extra:
        if need_query:
            report.drop(
                f"{path}.spec",
                f"metric source fields not imported: {', '.join(map(str, extra))} (only the query is used)",
            )
        else:
            source_obj.extra = extra
    return source_obj


def _source_problems(sources: list[_Source], labels: dict[str, str], ctx: _Context) -> bool:
    """Refuse (False) a ratio SLI we could never measure: a non-Prometheus source, a query without an
    exact per-minute count, or numerator and total from two different DataSources."""
    report = ctx.report
    ok = True
    for source in sources:
        if source.type is not None and source.type.lower() != PROMETHEUS.lower():
            where = f"{source.path}.type" if source.ref is None else f"{source.path}.metricSourceRef"
            report.error(
                where,
                f"metric source type {source.type!r}: SLIs are pulled from Prometheus-compatible query APIs (Prometheus, Thanos, Mimir, VictoriaMetrics) only, so this one would never have data",
            )
            ok = False
        elif source.query and (problem := query_problem(source.query)):
            report.error(f"{source.path}.spec.query", problem)
            ok = False
    refs = sorted({source.ref for source in sources if source.ref})
    if len(refs) > 1 or (refs and any(source.ref is None for source in sources)):
        report.error(
            sources[0].path,
            f"the numerator and the total come from different sources ({', '.join(map(_show, refs))} or none): one telemetry source pulls both",
        )
        ok = False
    elif refs:
        labels[LABEL_SOURCE_REF] = refs[0]
    return ok


def _source_type_label(sources: list[_Source], labels: dict[str, str], report: _Report) -> None:
    types = []
    for source in sources:
        if source.type is None:
            report.drop(source.path, "no metric source type: the query is taken as PromQL")
        elif source.type.lower() != PROMETHEUS.lower():
            report.drop(
                f"{source.path}.type",
                f"metric source type {source.type!r} is not Prometheus: the query is kept for export and not evaluated",
            )
        if source.type is not None and source.type not in types:
            types.append(source.type)
    if len(types) > 1:
        report.drop(sources[0].path, f"mixed metric source types {types}: exported back as {types[-1]!r}")
    if types and types[-1] != PROMETHEUS:
        labels[LABEL_SOURCE_TYPE] = types[-1]
    refs = sorted({source.ref for source in sources if source.ref})
    if refs:
        labels[LABEL_SOURCE_REF] = refs[0]
    extra = next((source.extra for source in sources if source.extra), None)
    if extra:
        labels[LABEL_THRESHOLD_SOURCE_SPEC] = json.dumps(extra, sort_keys=True, default=str)
