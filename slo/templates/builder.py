"""Build a service and its SLO documents from a template, pure: the caller reads the bucket
boundaries from the source and passes them in; nothing here talks to Prometheus or Django.

A latency threshold must be a bucket boundary on the source (otherwise the SLI matches no series):
the boundary nearest the requested threshold (the template's default when none is asked) is used,
the lower one on a tie, and the plan reports both. A latency SLI whose histogram is not on the source
is skipped with the reason, unless its threshold was asked for explicitly (then the build fails).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slo.contract import le_regex, selector
from slo.spec import NAME_RE, SERVICE_CLASSES, TIERS, Problem
from slo.templates.base import Counter, LatencySli, RatioSli, Template

COMMON_PARAMS = ("model", "objective", "window_days", "service_class", "owner")


class TemplateProblems(Exception):  # noqa: N818 -- carries the problems as values
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))
        self.problems = problems


@dataclass
class Plan:
    service: dict[str, Any]
    slos: list[dict[str, Any]] = field(default_factory=list)
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def threshold_param(sli: LatencySli) -> str:
    return f"{sli.key.replace('-', '_')}_threshold_ms"


def allowed_params(template: Template) -> list[str]:
    return [*COMMON_PARAMS, *(threshold_param(s) for s in template.latency_slis())]


def template_document(template: Template) -> dict[str, Any]:
    """What the listing endpoint shows: the SLIs, their metrics and defaults, the parameters."""
    slis = []
    for sli in template.slis:
        if isinstance(sli, LatencySli):
            slis.append(
                {
                    "key": sli.key,
                    "kind": "latency",
                    "title": sli.title,
                    "histograms": list(sli.histograms),
                    "default_threshold_ms": sli.default_threshold_ms,
                    "threshold_param": threshold_param(sli),
                    "objective": sli.objective,
                    "model_label": sli.model_label,
                }
            )
        else:
            part = sli.good or sli.bad
            assert part is not None  # a ratio SLI names good or bad counters
            slis.append(
                {
                    "key": sli.key,
                    "kind": "ratio",
                    "title": sli.title,
                    "good_query" if sli.good else "bad_query": render(part, sli.model_label, None),
                    "total_query": render(sli.total, sli.model_label, None),
                    "objective": sli.objective,
                    "model_label": sli.model_label,
                }
            )
    return {
        "name": template.name,
        "title": template.title,
        "project": template.project,
        "reference": template.reference,
        "slis": slis,
        "params": allowed_params(template),
        "notes": list(template.notes),
    }


def render(counter: Counter, model_label: str | None, model: str | None, **extra: str) -> str:
    matchers = dict(counter.matchers)
    if model and model_label:
        matchers[model_label] = model
    matchers.update(extra)
    if len(counter.names) == 1:
        return selector(counter.names[0], **matchers)
    return selector("", __name__="~" + "|".join(counter.names), **matchers)


def nearest_boundary(wanted: float, boundaries: list[float]) -> float:
    """The boundary nearest `wanted`; the lower one on a tie (the stricter SLO)."""
    return min(sorted(boundaries), key=lambda b: abs(b - wanted))


def _number(
    params: Mapping[str, Any], name: str, problems: list[Problem], *, lo: float, hi: float
) -> float | None:
    if name not in params:
        return None
    try:
        value = float(params[name])
    except (TypeError, ValueError):
        problems.append(Problem(f"params.{name}", "must be a number"))
        return None
    if not math.isfinite(value) or not lo < value < hi:
        problems.append(Problem(f"params.{name}", f"must be between {lo:g} and {hi:g} (exclusive)"))
        return None
    return value


def build_plan(
    template: Template,
    *,
    service_name: str,
    tier: str,
    params: Mapping[str, Any],
    boundaries: Mapping[str, list[float]],
) -> Plan:
    """The service and SLO documents. `boundaries` maps a histogram base name to its finite `le`
    values on the source (absent or empty: not found there). Raises TemplateProblems."""
    problems: list[Problem] = []
    if not isinstance(params, Mapping):
        raise TemplateProblems([Problem("params", "must be an object")])
    for name in params:
        if name not in allowed_params(template):
            problems.append(
                Problem(
                    f"params.{name}",
                    f"unknown parameter; {template.name} takes {', '.join(allowed_params(template))}",
                )
            )
    if not re.fullmatch(NAME_RE, service_name or ""):
        problems.append(Problem("service_name", "lowercase letters, digits and dashes, at most 63"))
    longest = max(len(sli.key) for sli in template.slis) + 1
    if len(service_name or "") + longest > 63:
        problems.append(Problem("service_name", f"at most {63 - longest} characters (SLO names add -<sli>)"))
    if tier not in TIERS:
        problems.append(Problem("source", f"the source's tier {tier!r} is not one of {', '.join(TIERS)}"))
    model = params.get("model")
    if model is not None and (not isinstance(model, str) or not model or '"' in model or "\\" in model):
        problems.append(Problem("params.model", "a model name without quotes or backslashes"))
        model = None
    service_class = params.get("service_class", template.service_class)
    if service_class not in SERVICE_CLASSES:
        problems.append(Problem("params.service_class", f"one of {', '.join(SERVICE_CLASSES)}"))
    objective = _number(params, "objective", problems, lo=0, hi=100)
    window = _number(params, "window_days", problems, lo=0, hi=401)
    if window is not None and window != int(window):
        problems.append(Problem("params.window_days", "a whole number of days"))
    requested = {
        s.key: _number(params, threshold_param(s), problems, lo=0, hi=math.inf)
        for s in template.latency_slis()
    }
    if problems:
        raise TemplateProblems(problems)

    plan = Plan(
        service={
            "name": service_name,
            "display_name": f"{template.title}" + (f" ({model})" if model else ""),
            "description": f"Created from the {template.name} template.",
            "service_class": service_class,
            "owner": str(params.get("owner", "")),
            "labels": {"template": template.name, **({"model": model} if model else {})},
            "tiers": [tier],
        }
    )
    base: dict[str, Any] = {
        "service": service_name,
        "tier": tier,
        "window": {"type": "rolling", "days": int(window or 28)},
        "labels": {"template": template.name},
    }
    for sli in template.slis:
        slo_name = f"{service_name}-{sli.key}"
        doc = {**base, "name": slo_name, "display_name": sli.title, "objective": objective or sli.objective}
        if isinstance(sli, RatioSli):
            counter = sli.good or sli.bad
            assert counter is not None
            doc["sli"] = {
                "kind": "custom",
                "good_query" if sli.good else "bad_query": render(counter, sli.model_label, model),
                "total_query": render(sli.total, sli.model_label, model),
            }
            plan.slos.append(doc)
            continue
        found = next(((h, sorted(boundaries[h])) for h in sli.histograms if boundaries.get(h)), None)
        wanted_ms = requested[sli.key]
        if found is None:
            reason = f"no buckets of {' or '.join(h + '_bucket' for h in sli.histograms)} on the source"
            if wanted_ms is not None:
                problems.append(Problem(f"params.{threshold_param(sli)}", reason))
            else:
                plan.skipped.append({"slo": slo_name, "reason": reason})
            continue
        histogram, les = found
        wanted_ms = sli.default_threshold_ms if wanted_ms is None else wanted_ms
        boundary = nearest_boundary(wanted_ms / sli.ms_per_unit, les)
        boundary_ms = boundary * sli.ms_per_unit
        series = Counter((f"{histogram}_bucket",))
        doc["sli"] = {
            "kind": "custom",
            "good_query": render(series, sli.model_label, model, le="~" + le_regex(boundary)),
            "total_query": render(Counter((f"{histogram}_count",)), sli.model_label, model),
        }
        doc["labels"] = {**base["labels"], "threshold_ms": f"{boundary_ms:g}"}
        doc["description"] = f"{sli.title} within {boundary_ms:g} ms ({histogram}, le={boundary:g})."
        plan.slos.append(doc)
        plan.thresholds.append(
            {
                "slo": slo_name,
                "histogram": histogram,
                "requested_ms": wanted_ms,
                "threshold_ms": boundary_ms,
                "le": f"{boundary:g}",
                "exact": math.isclose(boundary_ms, wanted_ms, rel_tol=1e-9),
                "boundaries_ms": [b * sli.ms_per_unit for b in les],
            }
        )
    if problems:
        raise TemplateProblems(problems)
    if not plan.slos:
        raise TemplateProblems([Problem("source", "none of the template's metrics were found on the source")])
    return plan


def counter_names(template: Template) -> list[str]:
    """Every counter name the template's ratio SLIs read."""
    names: list[str] = []
    for sli in template.slis:
        if isinstance(sli, RatioSli):
            for counter in (sli.good, sli.bad, sli.total):
                if counter is not None:
                    names += counter.names
    return list(dict.fromkeys(names))


def missing_counter_warnings(template: Template, service_name: str, found: set[str]) -> list[dict[str, str]]:
    """Ratio SLOs whose counters have no series on the source yet: created all the same (a new
    deployment without traffic has none), but they show no data until the series appear."""
    out = []
    for sli in template.slis:
        if not isinstance(sli, RatioSli):
            continue
        part = sli.good or sli.bad
        assert part is not None
        missing = [n for n in part.names if n not in found]
        if not any(n in found for n in sli.total.names):
            missing += [n for n in sli.total.names if n not in missing]
        if missing:
            out.append(
                {
                    "slo": f"{service_name}-{sli.key}",
                    "message": f"no series of {', '.join(missing)} on the source yet: no data until they appear",
                }
            )
    return out
