"""Simulate two routing policy versions against the service's measured route behaviour.

Route figures come from telemetry when there is enough of it, and from documented assumptions
otherwise; the answer says which is which for every number (no data is not good data):

* latency p50/p95 per route: the pushed `inference_request_duration_seconds_bucket{outcome="ok"}`
  histogram over the window, summed over tiers and minutes, quantiles interpolated within buckets
  the way Prometheus' `histogram_quantile` does (`slo.telemetry.selectors.contract_series`);
* error ratio per route: `inference_requests_total` with outcome error or timeout over
  ok + error + timeout; for `cache` it is the miss ratio from `inference_cache_lookups_total`;
* cost per request per route: hourly cost rollups (`slo.models.budget.CostRollup`), cost over
  requests. The simulator charges it per attempt (a timed-out attempt is still paid for).

A route figure is *measured* only with at least `MIN_REQUESTS` events in the window.

Request contexts (what the traffic looks like, which decides which rule each request meets) are by
default *recorded*: drawn from the context samples the service's gateways pushed over the last hour
(`slo.telemetry.context_selectors.recorded_contexts`), weighted by the traffic each stands for.
Without at least `MIN_RECORDED_CONTEXTS` of them the simulation refuses (`NoRecordedTraffic`)
instead of predicting from contexts nobody saw. `contexts` (given) and `generate` (a distribution)
are what-if modes. The release gate and the policy page call `routing_policy_simulate` with the
same defaults, so they give the same figures for the same data.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from controlplane.errors import DomainError, ValidationFailed
from controlplane.lib.histograms import histogram_quantile as quantile_of
from routing.documents import selectors
from routing.documents.kinds import ROUTING_POLICY
from routing.documents.validation import context_problems
from routing.policy import (
    ROUTES,
    CompiledPolicy,
    RouteStats,
    draw_recorded_contexts,
    generate_contexts,
    simulate,
)
from routing.policy.conditions import context_value
from slo.spec import TIERS, Problem
from slo.telemetry.context_selectors import recorded_contexts

logger = logging.getLogger(__name__)

MIN_REQUESTS = 100
MAX_CONTEXTS = 50_000
DEFAULT_WINDOW = timedelta(days=7)
# Recorded traffic: the window read and the requests drawn from it. The release gate and the page
# use these defaults, so both show the same prediction for the same data.
RECORDED_WINDOW_MINUTES = 60
RECORDED_REQUESTS = 2000
# Fewer recorded contexts than this do not describe the traffic: the answer is "unknown".
MIN_RECORDED_CONTEXTS = 100


class NoRecordedTraffic(DomainError):
    """Too few recorded request contexts to say what real traffic looks like: a simulation would
    predict from contexts nobody saw. A gate reads this as unknown (waits for a person)."""

    status = 409


# Documented assumptions when a route has no (or too little) telemetry. Ballpark figures for a
# small vision/LLM model: an edge NPU, a result cache, a private GPU cluster one metro hop away,
# a public cloud endpoint further away and priced per call.
ASSUMED_ROUTE_STATS: dict[str, dict[str, float]] = {
    "local": {"p50_ms": 15.0, "p95_ms": 35.0, "error_ratio": 0.01, "cost_per_request_usd": 0.00002},
    "cache": {"p50_ms": 2.0, "p95_ms": 6.0, "error_ratio": 0.6, "cost_per_request_usd": 0.000001},
    "private_cloud": {"p50_ms": 45.0, "p95_ms": 110.0, "error_ratio": 0.005, "cost_per_request_usd": 0.0004},
    "public_cloud": {"p50_ms": 80.0, "p95_ms": 220.0, "error_ratio": 0.002, "cost_per_request_usd": 0.0012},
}
FIGURES = ("latency", "error_ratio", "cost_per_request_usd")


def _labels(text: str) -> dict[str, str]:
    out = {}
    for part in (text or "").split(","):
        key, _, value = part.partition("=")
        if key:
            out[key.strip()] = value.strip()
    return out


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile in ms of cumulative `le` (seconds) -> count buckets."""
    seconds = quantile_of(q, buckets)
    return None if seconds is None else seconds * 1000


def _measured_from_telemetry(service: str, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
    try:
        from slo.telemetry.selectors import contract_series
    except ImportError:
        return {}
    names = [
        "inference_request_duration_seconds_bucket",
        "inference_requests_total",
        "inference_cache_lookups_total",
    ]
    try:
        # a savepoint: a failed read must not poison the caller's transaction
        with transaction.atomic():
            frame = contract_series(start=start, end=end, services=[service], names=names)
    except Exception:  # noqa: BLE001 - telemetry is optional here: fall back to assumptions, loudly
        logger.warning(
            "simulation: reading telemetry for %s failed; using assumed route figures", service, exc_info=True
        )
        return {}
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    outcomes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    lookups: dict[str, float] = defaultdict(float)
    for name, labels_text, value in frame[["name", "labels", "value"]].itertuples(index=False):
        labels = _labels(labels_text)
        if name == "inference_request_duration_seconds_bucket" and labels.get("outcome") == "ok":
            try:
                bound = float(labels.get("le", ""))
            except ValueError:
                continue
            buckets[labels.get("route", "")][bound] += float(value)
        elif name == "inference_requests_total":
            outcomes[labels.get("route", "")][labels.get("outcome", "")] += float(value)
        elif name == "inference_cache_lookups_total":
            lookups[labels.get("result", "")] += float(value)
    out: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        figures: dict[str, Any] = {}
        histogram = buckets.get(route)
        if histogram and max(histogram.values()) >= MIN_REQUESTS:
            p50, p95 = histogram_quantile(0.5, histogram), histogram_quantile(0.95, histogram)
            if p50 is not None and p95 is not None:
                p50 = max(p50, 0.1)
                figures["p50_ms"], figures["p95_ms"] = p50, max(p95, p50)
                figures["latency_events"] = int(max(histogram.values()))
        if route == "cache":
            total = sum(lookups.values())
            if total >= MIN_REQUESTS:
                figures["error_ratio"] = lookups.get("miss", 0.0) / total
                figures["error_events"] = int(total)
        else:
            counts = outcomes.get(route, {})
            valid = counts.get("ok", 0.0) + counts.get("error", 0.0) + counts.get("timeout", 0.0)
            if valid >= MIN_REQUESTS:
                figures["error_ratio"] = (counts.get("error", 0.0) + counts.get("timeout", 0.0)) / valid
                figures["error_events"] = int(valid)
        if figures:
            out[route] = figures
    return out


def _measured_cost(service_id: int, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
    try:
        from django.db.models import Sum

        from slo.models.budget import CostRollup
    except ImportError:
        return {}
    try:
        with transaction.atomic():
            rows = (
                CostRollup.objects.filter(
                    service_id=service_id,
                    resolution="hour",
                    bucket_start__gte=start,
                    bucket_start__lt=end,
                    route__in=list(ROUTES),
                )
                .values("route")
                .annotate(requests=Sum("requests"), cost_usd=Sum("cost_usd"))
            )
            rows = list(rows)
    except Exception:  # noqa: BLE001 - cost is optional here: fall back to assumptions, loudly
        logger.warning(
            "simulation: reading cost rollups for service %s failed; using assumed costs",
            service_id,
            exc_info=True,
        )
        return {}
    out = {}
    for row in rows:
        if (row["requests"] or 0) >= MIN_REQUESTS:
            out[row["route"]] = {
                "cost_per_request_usd": row["cost_usd"] / row["requests"],
                "cost_events": int(row["requests"]),
            }
    return out


def route_stats_for(
    *, service: Any, now: datetime, window: timedelta = DEFAULT_WINDOW
) -> dict[str, dict[str, Any]]:
    """Per route: the figures the simulator uses and, for each, `measured` or `assumed`."""
    start = now - window
    measured = _measured_from_telemetry(service.name, start, now)
    costs = _measured_cost(service.pk, start, now)
    out: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        assumed = ASSUMED_ROUTE_STATS[route]
        seen = {**measured.get(route, {}), **costs.get(route, {})}
        latency_measured = "p50_ms" in seen
        stats = {
            "p50_ms": seen["p50_ms"] if latency_measured else assumed["p50_ms"],
            "p95_ms": seen["p95_ms"] if latency_measured else assumed["p95_ms"],
            "error_ratio": seen.get("error_ratio", assumed["error_ratio"]),
            "cost_per_request_usd": seen.get("cost_per_request_usd", assumed["cost_per_request_usd"]),
        }
        source = {
            "latency": "measured" if latency_measured else "assumed",
            "error_ratio": "measured" if "error_ratio" in seen else "assumed",
            "cost_per_request_usd": "measured" if "cost_per_request_usd" in seen else "assumed",
        }
        events = {k: seen[k] for k in ("latency_events", "error_events", "cost_events") if k in seen}
        out[route] = {"stats": stats, "source": source, "events": events}
    return out


def _clock(minute: int | None) -> str:
    return (
        datetime.fromtimestamp(minute * 60, tz=UTC).strftime("%Y-%m-%d %H:%M") if minute is not None else "-"
    )


def _recorded(
    spec: Any,
    body: Mapping[str, Any],
    service: Any,
    now: datetime,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if spec is None or spec is True:
        spec = {}
    if not isinstance(spec, Mapping):
        raise ValidationFailed(
            "invalid input",
            problems=[
                Problem("recorded", "an object with n, window_minutes, seed, tier, region (all optional)")
            ],
        )
    n = spec.get("n", RECORDED_REQUESTS)
    window_minutes = spec.get("window_minutes", RECORDED_WINDOW_MINUTES)
    seed = spec.get("seed", body.get("seed", 0))
    tier, region = spec.get("tier") or None, spec.get("region") or None
    problems = []
    for key in sorted(set(spec) - {"n", "window_minutes", "seed", "tier", "region"}):
        problems.append(Problem(f"recorded.{key}", "unknown field"))
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CONTEXTS:
        problems.append(Problem("recorded.n", f"an integer from 1 to {MAX_CONTEXTS}"))
    if (
        isinstance(window_minutes, bool)
        or not isinstance(window_minutes, int)
        or not 1 <= window_minutes <= 1440
    ):
        problems.append(Problem("recorded.window_minutes", "an integer from 1 to 1440"))
    if isinstance(seed, bool) or not isinstance(seed, int):
        problems.append(Problem("recorded.seed", "an integer"))
    if tier is not None and tier not in TIERS:
        problems.append(Problem("recorded.tier", f"one of {', '.join(TIERS)}"))
    if region is not None and not isinstance(region, str):
        problems.append(Problem("recorded.region", "a region name"))
    if problems:
        raise ValidationFailed("invalid input", problems=problems)
    start = now - timedelta(minutes=window_minutes)
    recorded = recorded_contexts(service=service.name, start=start, end=now, tier=tier, region=region)
    scope = " ".join(part for part in (service.name, tier, region) if part)
    window = f"{_clock(int(start.timestamp() // 60))}-{_clock(int(now.timestamp() // 60))[-5:]} UTC"
    if recorded.contexts < MIN_RECORDED_CONTEXTS:
        raise NoRecordedTraffic(
            f"no recorded traffic to simulate: {recorded.contexts} request contexts recorded for {scope} in "
            f"{window} (at least {MIN_RECORDED_CONTEXTS} needed)",
            problems=[
                Problem(
                    "recorded",
                    f"{recorded.contexts} request contexts recorded by gateways of {scope} "
                    f"in {window}; at least {MIN_RECORDED_CONTEXTS} are needed to say what "
                    "real traffic looks like. Gateways push them with their telemetry "
                    "(docs/telemetry.md, Request contexts); for a what-if, give a "
                    "distribution (generate) or contexts",
                )
            ],
            extra={"recorded_contexts": recorded.contexts, "window": {"start": start, "end": now}},
        )
    contexts = draw_recorded_contexts(recorded.samples, n, seed)
    gateways = sum(1 for source in recorded.sources if source.startswith("gateway:"))
    others = [source for source in recorded.sources if not source.startswith("gateway:")]
    from_what = f"{gateways} gateway{'s' if gateways != 1 else ''}" + (
        f" and {', '.join(others)}" if others else ""
    )
    summary = (
        f"{recorded.contexts:,} recorded contexts ({recorded.requests:,} requests) from {from_what}, "
        f"{_clock(recorded.first_minute)}-{_clock(recorded.last_minute + 1)[-5:]} UTC"
    )
    return contexts, {
        "source": "recorded",
        "n": n,
        "seed": seed,
        "summary": summary,
        "recorded_contexts": recorded.contexts,
        "recorded_requests": recorded.requests,
        "sources": recorded.sources,
        "tier": tier,
        "region": region,
        "window_minutes": window_minutes,
        "first_minute": datetime.fromtimestamp(recorded.first_minute * 60, tz=UTC)
        if recorded.first_minute is not None
        else None,
        "last_minute": datetime.fromtimestamp(recorded.last_minute * 60, tz=UTC)
        if recorded.last_minute is not None
        else None,
    }


def _contexts(
    body: Mapping[str, Any], service: Any, now: datetime
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    contexts, generate, recorded = body.get("contexts"), body.get("generate"), body.get("recorded")
    if sum(x is not None for x in (contexts, generate, recorded)) > 1:
        raise ValidationFailed(
            "invalid input",
            problems=[Problem("contexts", "give one of recorded (the default), generate or contexts")],
        )
    if contexts is None and generate is None:
        return _recorded(recorded, body, service, now)
    if contexts is not None:
        if not isinstance(contexts, list) or not contexts:
            raise ValidationFailed(
                "invalid input", problems=[Problem("contexts", "a non-empty list of objects")]
            )
        if len(contexts) > MAX_CONTEXTS:
            raise ValidationFailed("invalid input", problems=[Problem("contexts", f"at most {MAX_CONTEXTS}")])
        problems = [p for i, c in enumerate(contexts) for p in context_problems(c, f"contexts[{i}]")]
        if problems:
            raise ValidationFailed("invalid request contexts", problems=problems[:50])
        return [dict(c) for c in contexts], {"source": "given", "n": len(contexts)}
    if not isinstance(generate, Mapping):
        raise ValidationFailed(
            "invalid input", problems=[Problem("generate", "an object with n, distribution, seed")]
        )
    n, seed, distribution = generate.get("n", 5000), generate.get("seed", 0), generate.get("distribution", {})
    problems = []
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CONTEXTS:
        problems.append(Problem("generate.n", f"an integer from 1 to {MAX_CONTEXTS}"))
    if isinstance(seed, bool) or not isinstance(seed, int):
        problems.append(Problem("generate.seed", "an integer"))
    if not isinstance(distribution, Mapping):
        problems.append(Problem("generate.distribution", "an object: field -> constant or distribution"))
    if problems:
        raise ValidationFailed("invalid input", problems=problems)
    try:
        generated = generate_contexts(distribution, n, seed)
    except (ValueError, TypeError, KeyError, ZeroDivisionError, IndexError) as exc:
        raise ValidationFailed(
            "invalid input", problems=[Problem("generate.distribution", f"cannot draw from it: {exc}")]
        ) from None
    problems = context_problems(generated[0], "generated context") if generated else []
    if problems:
        raise ValidationFailed("invalid generated contexts", problems=problems)
    return generated, {"source": "generated", "n": n, "seed": seed, "distribution": dict(distribution)}


def _version_number(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationFailed("invalid input", problems=[Problem(key, "a version number")])
    return value


def _unsaved_version(line: Any, document: Any) -> Any:
    """A document as an unsaved version of the line, after the same checks a save makes."""
    from routing.documents.yamlio import canonical_sha256, json_problems

    problems = json_problems(document)
    if problems:
        raise ValidationFailed("invalid document", problems=problems)
    if isinstance(document, dict) and "service" not in document:
        document = {"service": line.service.name, **document}
    checked = selectors.document_check(kind=ROUTING_POLICY, service=line.service, document=document)
    if not checked.valid:
        raise ValidationFailed("invalid routing policy: fix it before simulating", problems=checked.errors)
    return ROUTING_POLICY.version_model(
        line=line,
        version=line.current_version + 1,
        document=document,
        document_sha256=canonical_sha256(document),
    )


def routing_policy_simulate(
    *, line: Any, body: Mapping[str, Any], now: datetime | None = None, candidate_document: Any = None
) -> dict[str, Any]:
    """Predict how `candidate_version` changes route mix, p95 per class, error-budget burn and cost
    per 1,000 inferences against `baseline_version` (default: the version running on most
    gateways, else the newest approved one).

    `candidate_document` simulates a document not stored yet instead (the dashboard's editor, before
    saving): it must validate against the service; the answer calls it version `current + 1`."""
    now = now or timezone.now()
    if candidate_document is not None:
        candidate = _unsaved_version(line, candidate_document)
    else:
        candidate_number = _version_number(body, "candidate_version")
        if candidate_number is None:
            raise ValidationFailed("invalid input", problems=[Problem("candidate_version", "required")])
        candidate = selectors.version_get(kind=ROUTING_POLICY, line=line, version=candidate_number)
    baseline_number = _version_number(body, "baseline_version")
    if baseline_number is not None:
        baseline = selectors.version_get(kind=ROUTING_POLICY, line=line, version=baseline_number)
    else:
        baseline = selectors.baseline_version(kind=ROUTING_POLICY, line=line)
        if baseline is None:
            raise ValidationFailed(
                "invalid input",
                problems=[
                    Problem("baseline_version", "no version is active or approved: give baseline_version")
                ],
            )
    service = line.service
    contexts, contexts_info = _contexts(body, service, now)
    context = selectors.validation_context_for(service=service)
    slo = context.whole_chain_slo
    figures = route_stats_for(service=service, now=now)
    service_class = service.service_class
    for item in contexts:
        item.setdefault("service_class", service_class)  # p95 per class needs a class on every request
    seed = body.get("seed", contexts_info.get("seed", 0))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationFailed("invalid input", problems=[Problem("seed", "an integer")])
    compiled_baseline = selectors.compiled_policy(version=baseline, service_class=service_class)
    compiled_candidate = selectors.compiled_policy(version=candidate, service_class=service_class)
    unseen = {
        **_unseen_condition_fields(compiled_baseline, contexts),
        **_unseen_condition_fields(compiled_candidate, contexts),
    }
    report = simulate(
        compiled_baseline,
        compiled_candidate,
        contexts,
        {route: RouteStats.of(entry["stats"]) for route, entry in figures.items()},
        latency_threshold_ms=slo.threshold_ms if slo else None,
        objective=slo.objective if slo else None,
        seed=seed,
    )
    baseline_report, candidate_report = asdict(report.a), asdict(report.b)
    burn_shift = None
    if report.a.budget_burn is not None and report.b.budget_burn is not None:
        burn_shift = report.b.budget_burn - report.a.budget_burn
    any_assumed = any(v == "assumed" for entry in figures.values() for v in entry["source"].values())
    return {
        "service": service.name,
        "baseline_version": baseline.version,
        "candidate_version": candidate.version,
        "contexts": contexts_info,
        "slo": (
            {"name": slo.name, "tier": slo.tier, "threshold_ms": slo.threshold_ms, "objective": slo.objective}
            if slo
            else None
        ),
        "baseline": baseline_report,
        "candidate": candidate_report,
        "route_mix_shift": report.route_mix_shift,
        "p95_shift_ms": report.p95_shift_ms,
        "cost_per_1000_shift_usd": report.cost_per_1000_shift_usd,
        "bad_ratio_shift": report.bad_ratio_shift,
        "budget_burn_shift": burn_shift,
        "route_stats": figures,
        "window": {"start": now - DEFAULT_WINDOW, "end": now},
        "unseen_condition_fields": unseen,
        "assumptions": [
            *(
                [
                    f"rules {', '.join(sorted(unseen))} test fields no simulated request carries "
                    f"({', '.join(sorted({f for fields in unseen.values() for f in fields}))}): they never match here"
                ]
                if unseen
                else []
            ),
            *(
                [
                    f"route figures marked 'assumed' are defaults (docs/routing.md, API): telemetry had fewer than "
                    f"{MIN_REQUESTS} events for them in the window"
                ]
                if any_assumed
                else []
            ),
            *(
                []
                if slo
                else ["the service has no latency SLO: bad events are failures only and no burn is given"]
            ),
            "budget burn is the predicted bad-event ratio over the allowed one (1.0 spends the budget exactly)",
        ],
    }


def _unseen_condition_fields(
    compiled: CompiledPolicy, contexts: list[dict[str, Any]]
) -> dict[str, list[str]]:
    """rule name -> the context fields its conditions test that no context carries: such a rule
    never matches in this simulation (nor on a gateway that does not report the field)."""
    present = {name for context in contexts for name, value in context.items() if value is not None}
    out: dict[str, list[str]] = {}
    for rule in compiled.rules:
        missing = sorted(
            {
                cond.field
                for cond in rule.conditions
                if cond.field not in present
                and context_value({}, cond.field, compiled.defaults) is None
                and not (cond.field == "queue_ratio" and {"queue_depth", "active_workers"} <= present)
            }
        )
        if missing:
            out[rule.name] = missing
    return out
