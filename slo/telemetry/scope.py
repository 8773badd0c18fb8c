"""What one gateway may report about (pure: no Django, no I/O).

A gateway is registered for one service on one tier (and region). Its pushes may carry only series
of that service and tier: a compromised or misconfigured edge box must not be able to write
telemetry for other services, burning their budgets (pages, freezes, automatic rollbacks) or hiding
their incidents. The series of the contract carry no region label; a gateway's region is implied by
its source (`gateway:<id>`), so it cannot claim another.

The caller that authenticated the gateway (the routing app's telemetry view) hands its registration
in as plain data, a `PushScope`; `slo` never reads the gateway registry itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from slo.spec import Problem
from slo.telemetry.batch_format import MAX_PROBLEMS, PushBatch


@dataclass(frozen=True)
class PushScope:
    """The registration of the gateway that sent a batch: its name, service, tier and region."""

    gateway: str
    service: str
    tier: str
    region: str = ""


_SCOPE_LABELS = ("service", "tier", "gateway")


def _violations(labels: Mapping[str, Any], scope: PushScope) -> Iterator[tuple[str, str]]:
    """(label, message) for each label of a series that lies outside the scope."""
    service = labels.get("service")
    if service is not None and service != scope.service:
        yield "service", f"gateway {scope.gateway} may push only service {scope.service}"
    tier = labels.get("tier")
    if tier is not None and tier != scope.tier:
        yield "tier", f"gateway {scope.gateway} may push only tier {scope.tier}"
    # the config revision gauges name a gateway: only its own
    gateway = labels.get("gateway")
    if gateway is not None and gateway != scope.gateway:
        yield "gateway", f"gateway {scope.gateway} may push only its own series, not gateway {gateway}"


def scope_problems(payload: dict[str, Any], batch: PushBatch, scope: PushScope) -> list[Problem]:
    """Every series of a validated batch outside the scope, with its path in the request
    (`minutes[0].counters[3].labels.service`); [] when the whole batch is in scope.

    The usual batch is checked per distinct series (a few hundred), not per sample; the request is
    walked only to name the offending items."""
    # the labels the scope looks at, per distinct value (series of a batch share them)
    seen = {tuple(ref.labels.get(label) for label in _SCOPE_LABELS) for ref in batch.series_refs()}
    if not any(
        True for values in seen for _ in _violations(dict(zip(_SCOPE_LABELS, values, strict=True)), scope)
    ):
        return []
    problems: list[Problem] = []
    for i, entry in enumerate(payload["minutes"]):
        for kind in ("counters", "gauges"):
            for j, item in enumerate(entry.get(kind) or ()):
                for label, message in _violations(item["labels"], scope):
                    problems.append(Problem(f"minutes[{i}].{kind}[{j}].labels.{label}", message))
                    if len(problems) >= MAX_PROBLEMS:
                        return problems
    return problems
