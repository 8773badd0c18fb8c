"""Prometheus recording and alerting rules for SLOs, comparable with what Sloth emits.

Per SLO, three rule groups:

- `slo-sli-recordings-<id>`: `slo:sli_error:ratio_rate<w>` for 5m, 30m, 1h, 2h, 6h, 1d, 3d (and any
  window a custom alert tier needs), computed from the raw counters; two helper series
  `slo:sli_error_events:rate5m` and `slo:sli_total_events:rate5m`; and the period ratio
  `slo:sli_error:ratio_rate<period>` = sum_over_time(errors 5m) / sum_over_time(total 5m). Summing
  the recorded 5m *rates* rather than averaging 5m *ratios* (Sloth) keeps the period ratio
  event-weighted, keeps quiet 5m slices (0/0 = NaN) from poisoning it (Sloth #231, #348), and
  avoids a 28-day `rate()` over raw counters, which is what makes long windows slow (Pyrra #1440).
- `slo-meta-recordings-<id>`: `slo:objective:ratio`, `slo:error_budget:ratio`,
  `slo:time_period:days`, `slo:current_burn_rate:ratio`, `slo:period_burn_rate:ratio`,
  `slo:period_error_budget_remaining:ratio`.
- `slo-alerts-<id>`: `SLOErrorBudgetBurnPage` / `SLOErrorBudgetBurnTicket`, each the OR of its
  multi-window tiers (long AND short window over the threshold; thresholds from
  `slo.engine.alert_tiers_for`, so the engine and Prometheus agree), and `SLOTelemetryMissing`
  when no total events were recorded for an hour: Prometheus cannot say "unknown", and an empty
  vector would otherwise just not fire (no data is not good data).

Labels: `slo_service`, `slo_name`, `slo_tier` (the spec's tier, or `all`) on every rule, the SLO's
own `labels` (names sanitised), and `slo_window` on the SLI ratio series: the window that ratio
averages over (5m .. 3d, or the period), like Sloth's `sloth_window`. Calendar SLOs cannot be
expressed with PromQL's fixed-length ranges; their rules use a rolling window of the nominal
length (7d for a week, 30d for a month), and the engine stays authoritative for calendar budgets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from slo.engine import BURN_WINDOWS_MIN, alert_period_days, alert_tiers_for, error_budget_ratio, window_name
from slo.engine.alerts import BurnRateTier
from slo.engine.windows import MINUTE_S
from slo.spec import SloSpec

RESERVED_LABELS = ("slo_service", "slo_name", "slo_tier", "slo_window", "severity")
_LABEL_NAME_RE = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class SliQueries:
    """The counters behind an SLI, as PromQL series selectors without a range.

    Each string is an instant-vector selector of a counter, e.g.
    `inference_requests_total{service="shelf-vision",route!="failed"}`; the rules wrap it as
    `sum(rate(<selector>[<window>]))`, so it must not carry a `[range]` or a function. Give
    `total` and exactly one of `good` (errors = total - good) or `bad`.
    """

    total: str
    good: str | None = None
    bad: str | None = None

    def __post_init__(self) -> None:
        if not self.total.strip():
            raise ValueError("SliQueries needs a total selector")
        if bool(self.good and self.good.strip()) == bool(self.bad and self.bad.strip()):
            raise ValueError("SliQueries needs exactly one of good or bad")
        for selector in (self.total, self.good, self.bad):
            if selector and selector.rstrip().endswith("]"):
                raise ValueError(f"selector {selector!r} must not carry a range; the rules add it")


def sli_queries_from_spec(spec: SloSpec) -> SliQueries | None:
    """The queries a custom SLI carries in its spec; None for other kinds (the telemetry contract
    derives those)."""
    if spec.sli.kind != "custom" or not spec.sli.total_query:
        return None
    return SliQueries(total=spec.sli.total_query, good=spec.sli.good_query, bad=spec.sli.bad_query)


def _num(value: float) -> str:
    return format(value, ".10g")


def _rate(selector: str, window: str) -> str:
    return f"sum(rate({selector}[{window}]))"


def _error_ratio_expr(queries: SliQueries, window: str) -> str:
    total = _rate(queries.total, window)
    if queries.bad:
        return f"({_rate(queries.bad, window)})\n/\n({total})"
    return f"1 - (\n  ({_rate(queries.good or '', window)})\n  /\n  ({total})\n)"


def _error_events_expr(queries: SliQueries, window: str) -> str:
    if queries.bad:
        return _rate(queries.bad, window)
    return f"{_rate(queries.total, window)} - {_rate(queries.good or '', window)}"


def _selector(metric: str, labels: dict[str, str]) -> str:
    matchers = ", ".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return f"{metric}{{{matchers}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _extra_labels(spec: SloSpec) -> dict[str, str]:
    """The spec's own labels, with names made valid for Prometheus and never overriding ours."""
    out = {}
    for key, value in sorted(spec.labels.items()):
        name = _LABEL_NAME_RE.sub("_", key)
        if not name or name[0].isdigit():
            name = f"_{name}"
        if name.startswith("__") or name in RESERVED_LABELS:
            continue
        out[name] = value
    return out


def _period_window(spec: SloSpec) -> str:
    return f"{alert_period_days(spec)}d"


def slo_rule_groups(
    spec: SloSpec, queries: SliQueries, *, interval: str | None = None
) -> list[dict[str, Any]]:
    """The three rule groups (SLI recordings, meta recordings, alerts) for one SLO."""
    id_labels = {"slo_service": spec.service, "slo_name": spec.name, "slo_tier": spec.tier or "all"}
    labels = {**_extra_labels(spec), **id_labels}
    group_id = "-".join(filter(None, (spec.service, spec.name, spec.tier)))
    budget = error_budget_ratio(spec.objective)
    tiers = alert_tiers_for(spec)
    period = _period_window(spec)

    windows_min = set(BURN_WINDOWS_MIN.values())
    for tier in tiers:
        windows_min.update((tier.long_window_min, tier.short_window_min))
    windows = [window_name(m) for m in sorted(windows_min)]

    sli_rules: list[dict[str, Any]] = [
        {
            "record": f"slo:sli_error:ratio_rate{w}",
            "expr": _error_ratio_expr(queries, w),
            "labels": {**labels, "slo_window": w},
        }
        for w in windows
    ]
    events_labels = {**labels, "slo_window": "5m"}
    sli_rules += [
        {
            "record": "slo:sli_error_events:rate5m",
            "expr": _error_events_expr(queries, "5m"),
            "labels": events_labels,
        },
        {
            "record": "slo:sli_total_events:rate5m",
            "expr": _rate(queries.total, "5m"),
            "labels": events_labels,
        },
    ]
    if period not in windows:
        errors_5m = _selector("slo:sli_error_events:rate5m", id_labels)
        total_5m = _selector("slo:sli_total_events:rate5m", id_labels)
        sli_rules.append(
            {
                "record": f"slo:sli_error:ratio_rate{period}",
                # Both sides carry the same labels (slo_window 5m), which the result replaces.
                "expr": f"sum_over_time({errors_5m}[{period}])\n/\nsum_over_time({total_5m}[{period}])",
                "labels": {**labels, "slo_window": period},
            }
        )

    period_ratio = _selector(f"slo:sli_error:ratio_rate{period}", id_labels)
    meta_rules: list[dict[str, Any]] = [
        {"record": "slo:objective:ratio", "expr": f"vector({_num(1.0 - budget)})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector({_num(budget)})", "labels": labels},
        {"record": "slo:time_period:days", "expr": f"vector({alert_period_days(spec)})", "labels": labels},
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": f"{_selector('slo:sli_error:ratio_rate5m', id_labels)} / {_num(budget)}",
            "labels": {**labels, "slo_window": "5m"},
        },
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": f"{period_ratio} / {_num(budget)}",
            "labels": {**labels, "slo_window": period},
        },
        {
            # Pyrra's ((1 - target) - errors/total) / (1 - target) = 1 - period burn rate.
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - ({period_ratio} / {_num(budget)})",
            "labels": {**labels, "slo_window": period},
        },
    ]

    alert_rules = []
    for severity, alert in (("page", "SLOErrorBudgetBurnPage"), ("ticket", "SLOErrorBudgetBurnTicket")):
        severity_tiers = [t for t in tiers if t.severity == severity]
        if not severity_tiers:
            continue
        alert_rules.append(
            {
                "alert": alert,
                "expr": "\nor\n".join(
                    _tier_expr(t, id_labels, budget, spec.min_valid_events) for t in severity_tiers
                ),
                "labels": {**labels, "severity": severity},
                "annotations": {
                    "summary": f"{spec.service}/{spec.name} is burning its error budget too fast",
                    "description": (
                        "Error ratio {{ $value | humanizePercentage }} over the long window. "
                        + "; ".join(_tier_text(t) for t in severity_tiers)
                        + f". SLO {_num(spec.objective)}% over {period}."
                    ),
                },
            }
        )
    total_5m = _selector("slo:sli_total_events:rate5m", id_labels)
    alert_rules.append(
        {
            "alert": "SLOTelemetryMissing",
            "expr": (
                f"absent_over_time({total_5m}[1h])\nor\n"
                f"max without (slo_window) (max_over_time({total_5m}[1h])) == 0"
            ),
            "for": "15m",
            "labels": {**labels, "severity": "ticket"},
            "annotations": {
                "summary": f"{spec.service}/{spec.name} has no valid events for an hour",
                "description": "Burn-rate alerts cannot fire without data; check the telemetry source.",
            },
        }
    )

    groups = [
        {"name": f"slo-sli-recordings-{group_id}", "rules": sli_rules},
        {"name": f"slo-meta-recordings-{group_id}", "rules": meta_rules},
        {"name": f"slo-alerts-{group_id}", "rules": alert_rules},
    ]
    if interval:
        for group in groups:
            group["interval"] = interval
    return groups


def _tier_expr(tier: BurnRateTier, id_labels: dict[str, str], budget: float, min_valid_events: int) -> str:
    bound = f"({_num(tier.burn_rate_threshold)} * {_num(budget)})"
    long_sel = _selector(f"slo:sli_error:ratio_rate{tier.long_window}", id_labels)
    short_sel = _selector(f"slo:sli_error:ratio_rate{tier.short_window}", id_labels)
    # `max without (slo_window)` lets the long and short series (and the tiers) match each other.
    expr = (
        f"(\n  max without (slo_window) ({long_sel} > {bound})\n"
        f"  and\n  max without (slo_window) ({short_sel} > {bound})"
    )
    if min_valid_events > 1:
        # Too few events in the short window is not a verdict (low-traffic noise, Pyrra #1925).
        # The event count is estimated from the recorded 5m total rate.
        total_5m = _selector("slo:sli_total_events:rate5m", id_labels)
        short_s = tier.short_window_min * MINUTE_S
        expr += (
            f"\n  and\n  max without (slo_window) "
            f"(avg_over_time({total_5m}[{tier.short_window}]) * {short_s} >= {min_valid_events})"
        )
    return expr + "\n)"


def _tier_text(tier: BurnRateTier) -> str:
    return (
        f"{_num(tier.burn_rate_threshold)}x over {tier.long_window} and {tier.short_window} "
        f"({_num(tier.budget_percent)}% of the budget)"
    )


def prometheus_rules(
    slos: Sequence[tuple[SloSpec, SliQueries | None]], *, interval: str | None = None
) -> dict[str, Any]:
    """A Prometheus rule file (`{"groups": [...]}`) for the given SLOs.

    Each entry pairs a spec with its `SliQueries`; None means "take them from the spec", which
    only custom SLIs can do (other kinds get theirs from the telemetry contract).
    """
    groups: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str | None]] = set()
    for spec, queries in slos:
        key = (spec.service, spec.name, spec.tier)
        if key in seen:
            raise ValueError(f"SLO {spec.service}/{spec.name} (tier {spec.tier}) appears twice")
        seen.add(key)
        queries = queries or sli_queries_from_spec(spec)
        if queries is None:
            raise ValueError(
                f"SLO {spec.service}/{spec.name}: no SLI queries given for a {spec.sli.kind} SLI"
            )
        groups.extend(slo_rule_groups(spec, queries, interval=interval))
    return {"groups": groups}


class _RulesDumper(yaml.SafeDumper):
    """Writes multi-line PromQL as `|` blocks so the file stays readable (a subclass, not a global patch)."""

    def ignore_aliases(self, data: Any) -> bool:
        # Shared label dicts would otherwise become YAML anchors (&id001), legal but hard to read.
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RulesDumper.add_representer(str, _str_representer)


def rules_yaml(slos: Sequence[tuple[SloSpec, SliQueries | None]], *, interval: str | None = None) -> str:
    """`prometheus_rules` as YAML text, ready for `rule_files` (and `promtool check rules`)."""
    rules = prometheus_rules(slos, interval=interval)
    return yaml.dump(rules, Dumper=_RulesDumper, sort_keys=False, width=1000, allow_unicode=True)
