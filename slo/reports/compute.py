"""The numbers of an error-budget report, from plain data (no Django).

The Django side (`slo.reports.selectors`) reads rows and engine results; everything here is a
function of what it is given, so regenerating a report over the same stored data gives the same
numbers, and tests can check each figure against hand-worked data.

Conventions: times are aware datetimes in, ISO 8601 strings out; a figure that cannot be computed
(no traffic, no cost model) is None, never 0 or 100%.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slo import contract as c
from slo.budget.cost import Prices, Usage, sla_checks
from slo.engine import calendar_period_bounds, minutes_between

SCHEMA_VERSION = 1
TOP_CONSUMERS = 5
# A burn-rate change smaller than this (in burn-rate units) is "flat": noise, not a trend.
TREND_FLAT_BURN = 0.05


# ----------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class ReportPeriod:
    """A calendar week or month in a time zone, and the one before it, as `[start, end)`."""

    unit: Literal["week", "month"]
    time_zone: str
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime

    @property
    def label(self) -> str:
        local = self.start.astimezone(ZoneInfo(self.time_zone)).date()
        if self.unit == "week":
            year, week, _ = local.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{local.year}-{local.month:02d}"

    @property
    def minutes(self) -> int:
        return minutes_between(self.start, self.end)

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "time_zone": self.time_zone,
            "label": self.label,
            "start": iso(self.start),
            "end": iso(self.end),
            "minutes": self.minutes,
            "previous_start": iso(self.previous_start),
            "previous_end": iso(self.previous_end),
        }


def valid_time_zone(name: Any) -> bool:
    if not isinstance(name, str) or not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def report_period(
    unit: str, time_zone: str, *, start: date | None, now: datetime
) -> tuple[ReportPeriod | None, list[dict[str, str]]]:
    """The period starting on local date `start` (a Monday for weeks, the 1st for months), or the
    last complete one before `now` when `start` is None. Refuses a period that has not ended:
    a report is a snapshot of a finished period."""
    problems = []
    if unit not in ("week", "month"):
        problems.append({"path": "period", "message": "week or month"})
    if not valid_time_zone(time_zone):
        problems.append({"path": "time_zone", "message": "an IANA time zone, e.g. Europe/Paris"})
    if start is not None and unit == "week" and start.weekday() != 0:
        problems.append({"path": "start", "message": "a week starts on a Monday"})
    if start is not None and unit == "month" and start.day != 1:
        problems.append({"path": "start", "message": "a month starts on the 1st"})
    if problems:
        return None, problems
    tz = ZoneInfo(time_zone)
    if start is None:
        current_start, _ = calendar_period_bounds(unit, time_zone, now)  # type: ignore[arg-type]
        bounds = calendar_period_bounds(unit, time_zone, current_start - timedelta(microseconds=1))  # type: ignore[arg-type]
    else:
        # Noon is inside the day whatever DST does at midnight.
        bounds = calendar_period_bounds(
            unit, time_zone, datetime(start.year, start.month, start.day, 12, tzinfo=tz)
        )  # type: ignore[arg-type]
    if bounds[1].astimezone(UTC) > now.astimezone(UTC):
        return None, [
            {"path": "start", "message": f"the period ends at {iso(bounds[1])}, after now: not complete"}
        ]
    previous = calendar_period_bounds(unit, time_zone, bounds[0] - timedelta(microseconds=1))  # type: ignore[arg-type]
    return ReportPeriod(unit, time_zone, bounds[0], bounds[1], previous[0], previous[1]), []  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- helpers


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def finite(value: Any) -> float | None:
    """A JSON-safe float: NaN and infinities (undefined figures) become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _div(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


# ----------------------------------------------------------------------------- budget figures


@dataclass(frozen=True)
class BudgetFigures:
    """One SLO over one window, as the engine computed it (`slo.engine.evaluate_batch`)."""

    good: float
    valid: float
    bad: float
    valid_events: float
    missing_minutes: int
    sli: float | None
    burn_rate: float | None
    data_quality: str
    error_budget_total: float | None
    error_budget_remaining_ratio: float | None

    def as_dict(self, objective_ratio: float) -> dict[str, Any]:
        return {
            "good": finite(self.good),
            "valid": finite(self.valid),
            "bad": finite(self.bad),
            "valid_events": finite(self.valid_events),
            "missing_minutes": int(self.missing_minutes),
            "sli": finite(self.sli),
            "burn_rate": finite(self.burn_rate),
            "data_quality": self.data_quality,
            "error_budget_total": finite(self.error_budget_total),
            "error_budget_consumed": finite(self.bad) if finite(self.valid) else None,
            "error_budget_remaining_ratio": finite(self.error_budget_remaining_ratio),
            # None without data: no data is neither met nor missed.
            "objective_met": None if finite(self.sli) is None else bool(self.sli >= objective_ratio),
        }


def burn_trend(current: float | None, previous: float | None) -> dict[str, Any]:
    """This period's burn rate against the previous period's: up (worse), down, flat or unknown."""
    current, previous = finite(current), finite(previous)
    if current is None or previous is None:
        return {"current": current, "previous": previous, "change": None, "direction": "unknown"}
    change = current - previous
    direction = "flat" if abs(change) < TREND_FLAT_BURN else ("up" if change > 0 else "down")
    return {"current": current, "previous": previous, "change": change, "direction": direction}


def daily_points(
    days: Iterable[tuple[date, float, float]],
    *,
    time_zone: str,
    start: datetime,
    end: datetime,
    error_budget_ratio: float,
) -> list[dict[str, Any]]:
    """Per local day of the period: good, valid (budget units), SLI and burn rate, from per-day
    sums `(local date, good, valid)` of the hourly buckets (an hour belongs to the local day it
    starts in). Days without traffic are listed with None (a gap in the chart, not 100%)."""
    tz = ZoneInfo(time_zone)
    sums: dict[date, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for day, good, valid in days:
        sums[day][0] += min(good, valid)
        sums[day][1] += valid
    out = []
    day = start.astimezone(tz).date()
    last = (end.astimezone(tz) - timedelta(microseconds=1)).date()
    while day <= last:
        good, valid = sums.get(day, (0.0, 0.0))
        sli = _div(good, valid)
        out.append(
            {
                "day": day.isoformat(),
                "good": good,
                "valid": valid,
                "sli": sli,
                "burn_rate": None if sli is None else ((valid - good) / valid) / error_budget_ratio,
            }
        )
        day += timedelta(days=1)
    return out


# ----------------------------------------------------------------------------- alert episodes


@dataclass(frozen=True)
class AlertRow:
    """One alert transition (`AlertEvent`)."""

    state_key: str
    slo_id: int | None
    kind: str
    severity: str
    state: str  # firing | resolved
    at: datetime


def alert_episodes(events: Iterable[AlertRow], *, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Firing -> resolved episodes that overlap `[start, end)`, clipped to it.

    `events` must hold every transition in the period plus, per alert, the last one before
    `start` (so an alert already firing at the start is known). An episode still firing at `end`
    is `ongoing_at_end` and lasts until `end`; events after `end` are ignored, so the numbers do
    not change when the report is regenerated later.
    """
    by_key: dict[str, list[AlertRow]] = defaultdict(list)
    for event in events:
        if event.at < end:
            by_key[event.state_key].append(event)
    episodes = []
    for key in sorted(by_key):
        opened: AlertRow | None = None
        spans: list[tuple[AlertRow, datetime | None]] = []
        for event in sorted(by_key[key], key=lambda e: e.at):
            if event.state == "firing" and opened is None:
                opened = event
            elif event.state == "resolved" and opened is not None:
                spans.append((opened, event.at))
                opened = None
        if opened is not None:
            spans.append((opened, None))
        for first, resolved_at in spans:
            span_end = end if resolved_at is None else min(resolved_at, end)
            span_start = max(first.at, start)
            if span_end <= span_start:
                continue  # before the period, or a zero-length flap
            episodes.append(
                {
                    "state_key": key,
                    "slo_id": first.slo_id,
                    "kind": first.kind,
                    "severity": first.severity,
                    "start": iso(span_start),
                    "end": iso(span_end),
                    "duration_s": (span_end - span_start).total_seconds(),
                    "started_before_period": first.at < start,
                    "ongoing_at_end": resolved_at is None or resolved_at > end,
                }
            )
    episodes.sort(key=lambda e: (e["start"], e["state_key"]))
    return episodes


def alert_summary(episodes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"episodes": len(episodes), "firing_s": 0.0, "by_severity": {}}
    for episode in episodes:
        out["firing_s"] += episode["duration_s"]
        bucket = out["by_severity"].setdefault(episode["severity"], {"episodes": 0, "firing_s": 0.0})
        bucket["episodes"] += 1
        bucket["firing_s"] += episode["duration_s"]
    return out


# ----------------------------------------------------------------------------- telemetry series


@dataclass(frozen=True)
class SeriesTotal:
    """One contract series summed over the period (`SeriesMinute` grouped in SQL)."""

    source: str
    tier: str
    name: str
    labels: str  # canonical `k=v,k=v`
    value: float

    def label(self, key: str) -> str:
        for part in self.labels.split(","):
            name, _, value = part.partition("=")
            if name == key:
                return value
        return ""


@dataclass(frozen=True)
class SloTarget:
    """What of an SLO the series can attribute: kind, tier (None: every tier) and threshold."""

    slo_id: int
    kind: str
    tier: str | None
    threshold_s: float | None


def _le(text: str) -> float | None:
    try:
        return math.inf if text in ("+Inf", "Inf", "inf") else float(text)
    except ValueError:
        return None


def bad_events_by_series(
    target: SloTarget, totals: Iterable[SeriesTotal]
) -> dict[tuple[str, str], list[float]]:
    """(route, source) -> [bad, valid] events of the SLO, from the series gateways push.

    The same SLI definitions as `slo.telemetry.derive`: availability counts error and timeout
    answers as bad; latency counts valid (ok or timeout) answers not in the threshold bucket;
    fallback success counts failed fallbacks by the route they left; correctness counts stale hits
    (no route). Other kinds cannot be split by route or gateway: empty.
    """
    out: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s in totals:
        if target.tier is not None and s.tier != target.tier:
            continue
        if target.kind == "availability" and s.name == c.REQUESTS_TOTAL:
            outcome = s.label("outcome")
            if outcome in c.VALID_OUTCOMES:
                cell = out[(s.label("route"), s.source)]
                cell[1] += s.value
                cell[0] += s.value if outcome != "ok" else 0.0
        elif target.kind == "latency":
            key = (s.label("route"), s.source)
            if s.name == f"{c.REQUEST_DURATION}_count" and s.label("outcome") in ("ok", "timeout"):
                out[key][1] += s.value
                out[key][0] += s.value  # every valid answer is bad ...
            elif (
                s.name == f"{c.REQUEST_DURATION}_bucket"
                and s.label("outcome") == "ok"
                and target.threshold_s is not None
                and _le(s.label("le")) == target.threshold_s
            ):
                out[key][0] -= s.value  # ... unless it was answered within the threshold
        elif target.kind == "fallback_success" and s.name == c.FALLBACKS_TOTAL:
            cell = out[(s.label("from_route"), s.source)]
            cell[1] += s.value
            cell[0] += s.value if s.label("outcome") != "ok" else 0.0
        elif target.kind == "correctness" and s.name == c.CACHE_LOOKUPS_TOTAL:
            result = s.label("result")
            if result in ("hit", "stale_hit", "semantic_hit"):
                cell = out[("", s.source)]
                cell[1] += s.value
                cell[0] += s.value if result == "stale_hit" else 0.0
    for cell in out.values():
        cell[0] = max(cell[0], 0.0)  # a bucket above its count (a reset) is not negative badness
    return dict(out)


def top_consumers(
    cells: Mapping[tuple[str, str], Sequence[float]],
    *,
    sources: Mapping[str, Mapping[str, str]],
    error_budget_total: float | None,
    limit: int = TOP_CONSUMERS,
) -> dict[str, Any]:
    """The routes, gateways and regions that spent the most of the SLO's budget.

    `share_of_bad` is the part of the bad events the series saw; `share_of_budget` divides by the
    engine's allowed bad events for the period (only for occurrences budgeting, where the budget
    is counted in events; None otherwise).
    """
    total_bad = sum(cell[0] for cell in cells.values())
    groups: dict[str, dict[str, list[float]]] = {"route": {}, "gateway": {}, "region": {}}
    for (route, source), (bad, valid) in cells.items():
        info = sources.get(source, {})
        keys = {
            "route": route or "(none)",
            "gateway": info.get("name") or source,
            "region": info.get("region") or "(unknown)",
        }
        for dimension, key in keys.items():
            cell = groups[dimension].setdefault(key, [0.0, 0.0])
            cell[0] += bad
            cell[1] += valid
    out: dict[str, Any] = {"bad_events": total_bad, "attributable": bool(cells)}
    for dimension, values in groups.items():
        ranked = sorted(values.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
        out[dimension] = [
            {
                "key": key,
                "bad_events": bad,
                "valid_events": valid,
                "share_of_bad": _div(bad, total_bad),
                "share_of_budget": None if not error_budget_total else bad / error_budget_total,
            }
            for key, (bad, valid) in ranked
            if bad > 0
        ]
    return out


def sla_section(
    totals: Iterable[SeriesTotal], prices: Prices | None, *, hours: float
) -> list[dict[str, Any]]:
    """Per tier: measured p95/p99 (histogram upper bounds of `ok` answers) and availability over the
    period against the SLA the cost model promises for that tier (`slo.budget.cost.sla_checks`)."""
    usage = Usage(hours=hours)
    buckets: dict[str, dict[float, float]] = defaultdict(dict)
    for s in totals:
        if s.name == c.REQUESTS_TOTAL and s.label("outcome") in c.VALID_OUTCOMES:
            good, valid = usage.availability.get(s.tier, (0.0, 0.0))
            usage.availability[s.tier] = (
                good + (s.value if s.label("outcome") == "ok" else 0.0),
                valid + s.value,
            )
        elif s.name == f"{c.REQUEST_DURATION}_bucket" and s.label("outcome") == "ok":
            bound = _le(s.label("le"))
            if bound is not None:
                buckets[s.tier][bound] = buckets[s.tier].get(bound, 0.0) + s.value
    for tier, by_bound in buckets.items():
        usage.latency_buckets[tier] = sorted(by_bound.items())
    checks = sla_checks(usage, prices if prices is not None else Prices())
    return [
        {
            "tier": check.tier,
            "measured_p95_ms": finite(check.measured_p95_ms),
            "measured_p99_ms": finite(check.measured_p99_ms),
            "measured_availability_percent": finite(check.measured_availability_percent),
            "promised": dict(check.promised),
            "breaches": list(check.breaches),
            "met": None if not check.promised else not check.breaches,
        }
        for check in checks
    ]


# ----------------------------------------------------------------------------- summary and CSV


def report_summary(services: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    slos = [slo for service in services for slo in service["slos"]]
    met = [s for s in slos if s["period"]["objective_met"] is True]
    missed = [s for s in slos if s["period"]["objective_met"] is False]
    exhausted = [
        s
        for s in slos
        if s["period"]["error_budget_remaining_ratio"] is not None
        and s["period"]["error_budget_remaining_ratio"] <= 0
    ]
    episodes = [e for service in services for e in service["alert_episodes"]]
    releases = [
        r for service in services for r in ((service["sections"].get("releases") or {}).get("data") or [])
    ]
    return {
        "services": len(services),
        "slos": len(slos),
        "slos_met": len(met),
        "slos_missed": len(missed),
        "slos_no_data": len(slos) - len(met) - len(missed),
        "budgets_exhausted": len(exhausted),
        "alert_episodes": len(episodes),
        "alert_firing_s": sum(e["duration_s"] for e in episodes),
        "releases": len(releases),
        "rollbacks": sum(len(r.get("rollbacks", [])) for r in releases),
        "cost_usd": sum(service["cost"]["cost_usd"] for service in services),
    }


CSV_HEADER = ("section", "service", "subject", "metric", "value")


def csv_rows(numbers: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The report as tidy rows (section, service, subject, metric, value): one table, every figure."""
    rows: list[tuple[Any, ...]] = []
    period = numbers["period"]
    for key in ("label", "unit", "time_zone", "start", "end"):
        rows.append(("period", "", "", key, period[key]))
    for key, value in numbers["summary"].items():
        rows.append(("summary", "", "", key, value))
    for service in numbers["services"]:
        name = service["name"]
        for slo in service["slos"]:
            subject = slo["name"]
            rows.append(("slo", name, subject, "objective_percent", slo["objective_percent"]))
            for key, value in slo["period"].items():
                rows.append(("slo", name, subject, key, value))
            for key in ("current", "previous", "change", "direction"):
                rows.append(("slo", name, subject, f"burn_trend_{key}", slo["burn_trend"][key]))
            for key in ("sli", "error_budget_remaining_ratio", "data_quality"):
                rows.append(("slo_window_at_end", name, subject, key, slo["window_at_end"][key]))
            for dimension in ("route", "gateway", "region"):
                for item in slo["consumers"].get(dimension, []):
                    rows.append(
                        (
                            "consumer",
                            name,
                            f"{subject}/{dimension}:{item['key']}",
                            "bad_events",
                            item["bad_events"],
                        )
                    )
                    rows.append(
                        (
                            "consumer",
                            name,
                            f"{subject}/{dimension}:{item['key']}",
                            "share_of_budget",
                            item["share_of_budget"],
                        )
                    )
        for episode in service["alert_episodes"]:
            subject = f"{episode['state_key']}@{episode['start']}"
            rows.append(("alert", name, subject, "severity", episode["severity"]))
            rows.append(("alert", name, subject, "duration_s", episode["duration_s"]))
        releases = service["sections"].get("releases") or {}
        for release in releases.get("data") or []:
            subject = f"release {release['id']}"
            rows.append(("release", name, subject, "state", release["state"]))
            rows.append(("release", name, subject, "gate_failures", release["gates"].get("fail", 0)))
            rows.append(("release", name, subject, "rollbacks", len(release["rollbacks"])))
        cost = service["cost"]
        for key in (
            "requests",
            "cost_usd",
            "cost_per_1000_usd",
            "cost_per_cache_hit_usd",
            "saved_per_hit_usd",
            "net_saving_usd",
            "hours_covered",
        ):
            rows.append(("cost", name, "", key, cost[key]))
        for tier, figures in cost["tiers"].items():
            rows.append(("cost", name, tier, "cost_per_1000_usd", figures["cost_per_1000_usd"]))
        for check in service["sla"]:
            for key in ("measured_p95_ms", "measured_p99_ms", "measured_availability_percent", "met"):
                rows.append(("sla", name, check["tier"], key, check[key]))
            for key, value in check["promised"].items():
                rows.append(("sla", name, check["tier"], f"promised_{key}", value))
    return rows
