"""OpenSLO mapping: the names, reserved labels and annotations, and value helpers shared by the
importer and the exporter (pure: no Django). The mapping table is in docs/openslo.md."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from slo.spec import Problem, SloSpec

__all__ = [  # the public names, re-exported by slo.openslo
    "ALERT_KINDS",
    "ANNOTATION_ALERT_TIERS",
    "ANNOTATION_MIN_VALID_EVENTS",
    "ANNOTATION_PREFIX",
    "ANNOTATION_SERVICE_CLASS",
    "ANNOTATION_SLI",
    "ANNOTATION_TIER",
    "API_VERSION",
    "DEFAULT_CALENDAR_START",
    "KINDS",
    "LABEL_ANNOTATION_PREFIX",
    "LABEL_CALENDAR_START",
    "LABEL_INDICATOR_DESCRIPTION",
    "LABEL_INDICATOR_DISPLAY_NAME",
    "LABEL_INDICATOR_NAME",
    "LABEL_LIST_LABELS",
    "LABEL_NAME",
    "LABEL_OBJECTIVE_DISPLAY_NAME",
    "LABEL_OBJECTIVE_OP",
    "LABEL_SERVICE",
    "LABEL_SOURCE_REF",
    "LABEL_SOURCE_TYPE",
    "LABEL_THRESHOLD_OP",
    "LABEL_THRESHOLD_QUERY",
    "LABEL_TIER_LIST",
    "LABEL_WINDOW_DURATION",
    "PROMETHEUS",
    "RESERVED_LABEL_PREFIX",
    "TIER_LABEL",
    "ImportResult",
    "QueriesFor",
]

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
LABEL_SOURCE_REF = "openslo.metric-source.ref"
LABEL_THRESHOLD_SOURCE_SPEC = "openslo.threshold.source-spec"
LABEL_WINDOW_DURATION = "openslo.time-window.duration"
LABEL_OBJECTIVE_OP = "openslo.objective.op"
# names of the OpenSLO labels that were lists (our labels hold one string: the items joined by ",")
LABEL_LIST_LABELS = "openslo.list-labels"
# OpenSLO `labels.tier` scopes the SLO to one of our tiers
TIER_LABEL = "tier"
LABEL_TIER_LIST = LABEL_LIST_LABELS + ".tier"  # "list" when labels.tier was a one-item list

# Our annotations: fields of SloSpec that OpenSLO cannot hold.
ANNOTATION_PREFIX = "inference-slo-controlplane/"
ANNOTATION_TIER = ANNOTATION_PREFIX + "tier"
ANNOTATION_MIN_VALID_EVENTS = ANNOTATION_PREFIX + "min-valid-events"
ANNOTATION_ALERT_TIERS = ANNOTATION_PREFIX + "alert-tiers"
ANNOTATION_SLI = ANNOTATION_PREFIX + "sli"
ANNOTATION_SERVICE_CLASS = ANNOTATION_PREFIX + "service-class"
_ANNOTATION_FIELDS = {
    ANNOTATION_SERVICE_CLASS: "service_class",
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
_BUDGETING_OUT = {
    "occurrences": "Occurrences",
    "timeslices": "Timeslices",
    "ratio_timeslices": "RatioTimeslices",
}
_DURATION_RE = re.compile(r"^([1-9][0-9]{0,6})([mhdwMQY])$")
_MINUTES = {"m": 1, "h": 60, "d": 1440, "w": 10080}

_TOP_KEYS = {"apiVersion", "kind", "metadata", "spec"}
_METADATA_KEYS = {"name", "displayName", "labels", "annotations"}
_SLO_SPEC_KEYS = {
    "description",
    "service",
    "indicator",
    "indicatorRef",
    "timeWindow",
    "budgetingMethod",
    "objectives",
    "alertPolicies",
}
_SLI_SPEC_KEYS = {"description", "ratioMetric", "thresholdMetric"}
_RATIO_KEYS = {"counter", "good", "bad", "total", "raw", "rawType"}
_OBJECTIVE_KEYS = {
    "displayName",
    "op",
    "value",
    "target",
    "targetPercent",
    "timeSliceTarget",
    "timeSliceWindow",
}
_WINDOW_KEYS = {"duration", "isRolling", "calendar"}

# Anything with .good/.bad/.total (slo.contract's sli_queries result) or a (good, bad, total) tuple.
QueriesFor = Callable[[SloSpec], Any]


@dataclass
class ImportResult:
    """What an OpenSLO file turned into. Refuse the import when `problems` is not empty."""

    services: list[dict[str, Any]] = field(default_factory=list)
    # DataSource documents: name, type, url (when the connection details give one), path
    datasources: list[dict[str, Any]] = field(default_factory=list)
    slos: list[SloSpec] = field(default_factory=list)
    # composite SLO documents (slo.composites.spec), to create after `slos`
    composites: list[dict[str, Any]] = field(default_factory=list)
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
    # labels given as lists (their items are joined with "," in `labels`)
    list_labels: list[str] = field(default_factory=list)


@dataclass
class _Source:
    path: str
    query: str | None
    type: str | None
    ref: str | None = None
    # a threshold source's fields other than the query (CloudWatch's metricName...), kept for export
    extra: dict[str, Any] | None = None


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


def _labels(node: Any, path: str, report: _Report, lists: list[str] | None = None) -> dict[str, str]:
    """OpenSLO labels (string or list-of-strings values) as our flat string labels.

    A list's items are joined with ","; the label's name is appended to `lists` so the export can
    give the list back (items that hold a comma themselves cannot come back apart: reported).
    """
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
            report.drop(
                key_path,
                f"label names starting with {RESERVED_LABEL_PREFIX!r} are reserved for import bookkeeping: dropped",
            )
        elif (text := _scalar_text(value)) is not None:
            out[key] = text
        elif isinstance(value, list) and all(_scalar_text(item) is not None for item in value):
            items = [str(_scalar_text(item)) for item in value]
            out[key] = ",".join(items)
            if lists is not None and "," not in key:
                lists.append(key)
            if any("," in item for item in items) or not items or lists is None or "," in key:
                report.drop(
                    key_path, f"a list of values is flattened to {out[key]!r} (our labels hold one string)"
                )
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


def _string(
    node: dict[Any, Any], key: str, path: str, report: _Report, *, required: bool = False
) -> str | None:
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


def _is_number(value: Any) -> TypeGuard[int | float]:
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
    names = {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return names.get(type(value), type(value).__name__)
