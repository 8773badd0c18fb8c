"""Prometheus recording and alerting rules for SLOs, comparable with what Sloth and Pyrra emit.

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
- `slo-alerts-<id>`: per alert tier one `SLOErrorBudgetBurnPage` / `SLOErrorBudgetBurnTicket` rule
  (long AND short window over the threshold, with a `for:` of half the short window and `long` /
  `short` labels, as Pyrra does; thresholds from `slo.engine.alert_tiers_for`, so the engine and
  Prometheus agree, floor of 1x included); `SLOTelemetryAbsent` when the total counter has no
  series at all; and `SLOTelemetryMissing` when no valid events were recorded for an hour.

An outage must never silence the rules. A gateway restarted into a total outage never creates
its good series (nothing succeeds), and a bad series may not exist until the first failure. So
the good or bad side of every expression is `(sum(rate(side[w])) or sum(rate(total[w])) * 0)`:
a missing side counts as zero events whenever the total exists, and both operands of `or` are
label-less sums, so they match. Only a missing total makes the SLI absent, and then
`SLOTelemetryAbsent` fires (absence is taken as a total outage, as Pyrra does: it fires after the
time the fastest page tier would need at 100% errors). Counter resets are `rate()`'s business.

Labels: `slo_service`, `slo_name`, `slo_tier` (the spec's tier, or `all`) on every rule, the SLO's
own `labels` (names sanitised; import bookkeeping such as `openslo.*` names, display names and
annotations is not a Prometheus label and is left out), and `slo_window` on the SLI ratio series:
the window that ratio averages over (5m .. 3d, or the period), like Sloth's `sloth_window`.
Calendar SLOs cannot be expressed with PromQL's fixed-length ranges; their rules use a rolling
window of the nominal length (7d for a week, 30d for a month), and the engine stays authoritative
for calendar budgets.

SLOs whose metrics are not in Prometheus get no rules: the caller passes them as `skipped` with a
reason, and a spec imported with a non-Prometheus metric source is skipped here. The YAML file
lists every skipped SLO and why in its header comment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from slo.engine import BURN_WINDOWS_MIN, alert_period_days, alert_tiers_for, error_budget_ratio, window_name
from slo.engine.alerts import BurnRateTier
from slo.engine.windows import MINUTE_S
from slo.openslo import LABEL_SOURCE_TYPE, PROMETHEUS, RESERVED_LABEL_PREFIX
from slo.promql import UnsupportedQuery, counter_selector
from slo.spec import SloSpec

RESERVED_LABELS = ("slo_service", "slo_name", "slo_tier", "slo_window", "severity", "long", "short")
_LABEL_NAME_RE = re.compile(r"[^a-zA-Z0-9_]")
ALERT_NAMES = {"page": "SLOErrorBudgetBurnPage", "ticket": "SLOErrorBudgetBurnTicket"}


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


@dataclass(frozen=True)
class SkippedSlo:
    """An SLO the rule file leaves out, and why."""

    service: str
    name: str
    tier: str | None
    reason: str

    @property
    def title(self) -> str:
        return f"{self.service}/{self.name}" + (f" (tier {self.tier})" if self.tier else "")


@dataclass(frozen=True)
class RuleFile:
    """A Prometheus rule file's groups, plus the SLOs left out of it."""

    groups: list[dict[str, Any]]
    skipped: list[SkippedSlo] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"groups": self.groups}

    def yaml(self) -> str:
        """The rule file as YAML text (for `rule_files` and `promtool check rules`), with a header
        comment naming every skipped SLO and the reason."""
        n_slos = len(self.groups) // 3
        header = [
            f"# Prometheus rules for {n_slos} SLO{'s' if n_slos != 1 else ''}, from the SLO control plane."
        ]
        if self.skipped:
            header.append("# Not exported, their metrics are not in Prometheus:")
            header += [f"#   {s.title}: {' '.join(s.reason.split())}" for s in self.skipped]
        body = yaml.dump(self.as_dict(), Dumper=_RulesDumper, sort_keys=False, width=1000, allow_unicode=True)
        return "\n".join(header) + "\n" + body


def sli_queries_from_spec(spec: SloSpec) -> SliQueries | None:
    """The queries a custom SLI carries in its spec; None for other kinds (the telemetry contract
    derives those)."""
    if spec.sli.kind != "custom" or not spec.sli.total_query:
        return None
    sli = spec.sli
    return SliQueries(
        total=_selector_of(sli.total_query),
        good=_selector_of(sli.good_query),
        bad=_selector_of(sli.bad_query),
    )


def _selector_of(query: str | None) -> str | None:
    """The counter selector of `sum(rate(sel[5m]))` and the other forms slo.promql understands (the
    rules wrap it in rate() themselves); a query it refuses is left as written."""
    if not query:
        return query
    try:
        return counter_selector(query)
    except UnsupportedQuery:
        return query


def non_prometheus_source(spec: SloSpec) -> str | None:
    """Why the spec's own metric source is not Prometheus (an OpenSLO import from e.g. Datadog),
    or None."""
    source_type = spec.labels.get(LABEL_SOURCE_TYPE)
    if source_type and source_type.lower() != PROMETHEUS.lower():
        return f"its metric source is {source_type!r}, not Prometheus"
    return None


def _num(value: float) -> str:
    return format(value, ".10g")


def _rate(selector: str, window: str) -> str:
    return f"sum(rate({selector}[{window}]))"


def _side_or_zero(selector: str, queries: SliQueries, window: str) -> str:
    """The good or bad events, zero when that series does not exist but the total does."""
    return f"({_rate(selector, window)} or {_rate(queries.total, window)} * 0)"


def _error_ratio_expr(queries: SliQueries, window: str) -> str:
    total = _rate(queries.total, window)
    if queries.bad:
        return f"{_side_or_zero(queries.bad, queries, window)}\n/\n{total}"
    return f"1 - (\n  {_side_or_zero(queries.good or '', queries, window)}\n  /\n  {total}\n)"


def _error_events_expr(queries: SliQueries, window: str) -> str:
    if queries.bad:
        return _side_or_zero(queries.bad, queries, window)
    return f"{_rate(queries.total, window)}\n-\n{_side_or_zero(queries.good or '', queries, window)}"


def _selector(metric: str, labels: dict[str, str]) -> str:
    matchers = ", ".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return f"{metric}{{{matchers}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _extra_labels(spec: SloSpec) -> dict[str, str]:
    """The spec's own labels, with names made valid for Prometheus and never overriding ours.

    Import bookkeeping (`openslo.*`: original names, display names, descriptions, annotations,
    the metric source type) is kept for a faithful re-export, not for Prometheus: it would only
    add long free-text label values to every series and alert.
    """
    out = {}
    for key, value in sorted(spec.labels.items()):
        if key.startswith(RESERVED_LABEL_PREFIX):
            continue
        name = _LABEL_NAME_RE.sub("_", key)
        if not name or name[0].isdigit():
            name = f"_{name}"
        if name.startswith("__") or name in RESERVED_LABELS:
            continue
        out[name] = value
    return out


def _period_window(spec: SloSpec) -> str:
    return f"{alert_period_days(spec)}d"


def alert_for_minutes(tier: BurnRateTier) -> int:
    """`for:` of a tier's alert: half its short window (Pyrra: 2m for 5m, 15m for 30m, 1h for 2h,
    3h for 6h), whole minutes, at least one. A blip shorter than that does not page."""
    return max(1, tier.short_window_min // 2)


def absent_for_minutes(tier: BurnRateTier, budget: float) -> int:
    """`for:` of the absent-telemetry alert: how long `tier` needs to fire at 100% errors (its long
    window must reach the threshold's error ratio) plus its own `for:`. Absence is taken as a total
    outage, so it alerts no sooner and no later than the outage itself would."""
    error_share = min(1.0, tier.burn_rate_threshold * budget)
    return max(1, math.ceil(error_share * tier.long_window_min)) + alert_for_minutes(tier)


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

    alert_rules: list[dict[str, Any]] = [
        {
            "alert": ALERT_NAMES[tier.severity],
            "expr": _tier_expr(tier, id_labels, budget, spec.min_valid_events),
            "for": window_name(alert_for_minutes(tier)),
            "labels": {
                **labels,
                "severity": tier.severity,
                "long": tier.long_window,
                "short": tier.short_window,
            },
            "annotations": {
                "summary": f"{spec.service}/{spec.name} is burning its error budget too fast",
                "description": f"{_tier_text(tier, budget)}. SLO {_num(spec.objective)}% over {period}.",
            },
        }
        for tier in tiers
    ]
    # The most urgent tier decides how soon and how loudly missing counters are reported.
    urgent = min(tiers, key=lambda t: (t.severity != "page", t.long_window_min))
    alert_rules.append(
        {
            "alert": "SLOTelemetryAbsent",
            "expr": f"absent({queries.total})",
            "for": window_name(absent_for_minutes(urgent, budget)),
            "labels": {**labels, "severity": urgent.severity},
            "annotations": {
                "summary": f"{spec.service}/{spec.name}: no series of its total counter exists",
                "description": (
                    "Prometheus has no series of the SLO's total counter: the gateways are down, not scraped, "
                    "or never initialised the series. Burn-rate alerts cannot see an outage without it."
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
    # `max without (slo_window)` lets the long and short series match each other.
    expr = (
        f"max without (slo_window) ({long_sel} > {bound})\n"
        f"and\nmax without (slo_window) ({short_sel} > {bound})"
    )
    if min_valid_events > 1:
        # Too few events in the short window is not a verdict (low-traffic noise, Pyrra #1925).
        # The event count is estimated from the recorded 5m total rate.
        total_5m = _selector("slo:sli_total_events:rate5m", id_labels)
        short_s = tier.short_window_min * MINUTE_S
        expr += (
            f"\nand\nmax without (slo_window) "
            f"(avg_over_time({total_5m}[{tier.short_window}]) * {short_s} >= {min_valid_events})"
        )
    return expr


def _tier_text(tier: BurnRateTier, budget: float) -> str:
    """What a tier's alert means, without `$value`: the annotation is the same whenever it fires."""
    text = (
        f"Error ratio above {_num(round(tier.burn_rate_threshold * budget * 100, 6))}% over both "
        f"{tier.long_window} and {tier.short_window}: {_num(tier.burn_rate_threshold)}x burn"
    )
    if tier.threshold_raised:
        return (
            f"{text} (scaled to the SLO window {_num(round(tier.scaled_burn_rate_threshold, 4))}x, "
            "raised to 1x: no alert below budget-neutral burn)"
        )
    return f"{text}, {_num(tier.budget_percent)}% of the budget in {tier.long_window}"


def rule_file(
    slos: Sequence[tuple[SloSpec, SliQueries | None]],
    *,
    interval: str | None = None,
    skipped: Sequence[SkippedSlo] = (),
) -> RuleFile:
    """The rule file for the given SLOs.

    Each entry pairs a spec with its `SliQueries`; None means "take them from the spec", which
    only custom SLIs can do (other kinds get theirs from the telemetry contract). SLOs the caller
    already left out come in `skipped`; a spec whose own metric source is not Prometheus joins them.
    """
    groups: list[dict[str, Any]] = []
    left_out = list(skipped)
    seen: set[tuple[str, str, str | None]] = set()
    for spec, queries in slos:
        key = (spec.service, spec.name, spec.tier)
        if key in seen:
            raise ValueError(f"SLO {spec.service}/{spec.name} (tier {spec.tier}) appears twice")
        seen.add(key)
        reason = non_prometheus_source(spec)
        if reason:
            left_out.append(SkippedSlo(spec.service, spec.name, spec.tier, reason))
            continue
        queries = queries or sli_queries_from_spec(spec)
        if queries is None:
            raise ValueError(
                f"SLO {spec.service}/{spec.name}: no SLI queries given for a {spec.sli.kind} SLI"
            )
        groups.extend(slo_rule_groups(spec, queries, interval=interval))
    return RuleFile(groups, left_out)


def prometheus_rules(
    slos: Sequence[tuple[SloSpec, SliQueries | None]], *, interval: str | None = None
) -> dict[str, Any]:
    """A Prometheus rule file (`{"groups": [...]}`) for the given SLOs (see `rule_file`)."""
    return rule_file(slos, interval=interval).as_dict()


class _RulesDumper(yaml.SafeDumper):
    """Writes multi-line PromQL as `|` blocks so the file stays readable (a subclass, not a global patch)."""

    def ignore_aliases(self, data: Any) -> bool:
        # Shared label dicts would otherwise become YAML anchors (&id001), legal but hard to read.
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RulesDumper.add_representer(str, _str_representer)


def rules_yaml(
    slos: Sequence[tuple[SloSpec, SliQueries | None]],
    *,
    interval: str | None = None,
    skipped: Sequence[SkippedSlo] = (),
) -> str:
    """`rule_file` as YAML text, ready for `rule_files` (and `promtool check rules`)."""
    return rule_file(slos, interval=interval, skipped=skipped).yaml()
