"""The Prometheus rule file for stored SLOs (the pure generator is `slo.rules`).

Only SLOs whose metrics are in Prometheus get rules. An SLO is left out, with the reason in the
file's header, when its spec names a metric source other than Prometheus (an OpenSLO import from
another vendor), or when it is fed only by gateway pushes: a live push feed and neither a pull
feed nor an enabled telemetry source serving it. Rules for it would watch counters no Prometheus
has, and `SLOTelemetryAbsent` would page for an SLO that is measured fine. An SLO with no feed at
all yet gets rules: its gateways expose the contract's metrics, which any Prometheus can scrape.
"""

from __future__ import annotations

from collections.abc import Sequence

from slo.contract import sli_queries
from slo.models import Slo
from slo.models.telemetry import SliFeed, TelemetrySource
from slo.rules import RuleFile, SkippedSlo, SliQueries, rule_file
from slo.spec import Problem, SloSpec

PUSH_ONLY_REASON = "fed only by gateway pushes: no Prometheus telemetry source serves it, so Prometheus has no counters for it"


def _prometheus_served_ids(slos: Sequence[Slo]) -> set[int]:
    """SLOs an enabled telemetry source serves (same rule as `slo.telemetry.pull.served_slos`:
    the source's tier, or any tier of the service for an SLO without one; `services` narrows it)."""
    served = set()
    for source in TelemetrySource.objects.filter(enabled=True).only("tier", "services"):
        for slo in slos:
            if source.services and slo.service.name not in source.services:
                continue
            if slo.tier == source.tier or (not slo.tier and source.tier in (slo.service.tiers or [])):
                served.add(slo.pk)
    return served


def _push_only_ids(slos: Sequence[Slo]) -> set[int]:
    ids = [slo.pk for slo in slos]
    modes: dict[int, set[str]] = {}
    for slo_id, mode in (
        SliFeed.objects.filter(slo_id__in=ids).exclude(mode="retired").values_list("slo_id", "mode")
    ):
        modes.setdefault(slo_id, set()).add(mode)
    pushed = {slo_id for slo_id, found in modes.items() if found == {"push"}}
    return pushed - _prometheus_served_ids([slo for slo in slos if slo.pk in pushed])


def slo_rule_file(
    *, slos: Sequence[Slo], interval: str | None = None
) -> tuple[RuleFile | None, list[Problem]]:
    """The rule file for `slos` (with `service` loaded), or the problems that prevent one."""
    push_only = _push_only_ids(slos)
    entries = []
    skipped = []
    problems = []
    for slo in slos:
        spec = SloSpec.model_validate(slo.spec)
        if slo.pk in push_only:
            skipped.append(SkippedSlo(spec.service, spec.name, spec.tier, PUSH_ONLY_REASON))
            continue
        try:
            queries = sli_queries(spec)
            entries.append((spec, SliQueries(total=queries.total, good=queries.good, bad=queries.bad)))
        except ValueError as exc:
            problems.append(Problem(f"slos[{slo.pk}]", str(exc)))
    if problems:
        return None, problems
    return rule_file(entries, interval=interval, skipped=skipped), []
