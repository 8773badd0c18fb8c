"""Which Alertmanager alerts may roll a release back (pure: no Django).

Alertmanager re-sends every firing alert of a group on `repeat_interval`, so an alert that began
days before a rollout (the incident a hotfix is fixing) keeps arriving while the rollout runs. An
alert therefore acts on a release only when it is about that rollout:

* it is firing (a resolved alert never acts);
* its `severity` label is one of the service's rollback severities (default `page`);
* its `startsAt` is at or after the rollout's first wave began (it cannot be caused by a release
  that was not running yet; an alert without a readable `startsAt` cannot show that and does not act);
* its service label (`service` or `slo_service`) names the release's service;
* its tier label (`tier` or `slo_tier`; `all` means the whole service) and `region` label, when
  present, name a tier and region of a gateway the release has reached. An alert without them is
  about the whole service, which includes the gateways the release runs on.

`judge` returns the verdict with the reason, stored with every received alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SERVICE_LABELS = ("service", "slo_service")
TIER_LABELS = ("tier", "slo_tier")
REGION_LABELS = ("region",)
WHOLE_SERVICE = "all"  # `slo_tier="all"`: an SLO over every tier
DEFAULT_SEVERITIES = ("page",)
# Bigger groups must be split on the Alertmanager side (`max_alerts` in the webhook config).
MAX_ALERTS = 5000


@dataclass(frozen=True)
class Alert:
    """One alert of a webhook body (payload version 4), as received."""

    index: int
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None
    starts_at_text: str
    fingerprint: str
    generator_url: str

    @property
    def service(self) -> str:
        return next((self.labels[k] for k in SERVICE_LABELS if self.labels.get(k)), "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    def as_evidence(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": self.starts_at_text,
            "status": self.status,
            "fingerprint": self.fingerprint,
            "generatorURL": self.generator_url,
        }


@dataclass(frozen=True)
class RolloutScope:
    """What an alert must match to be about one release's rollout."""

    release_id: int
    service: str
    rollout_started_at: datetime | None
    tiers: frozenset[str]
    regions: frozenset[str]
    severities: frozenset[str]


@dataclass(frozen=True)
class Verdict:
    acts: bool
    reason: str


def _parse_time(value: Any) -> datetime | None:
    """An RFC 3339 instant with a zone (Alertmanager sends nanoseconds; Python keeps microseconds)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _strings(raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, Mapping):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        return None
    return dict(raw)


def parse_webhook(payload: Any) -> tuple[list[Alert], list[tuple[str, str]]]:
    """Every alert of an Alertmanager webhook body, or (path, message) problems."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("alerts"), list):
        return [], [("alerts", "an Alertmanager webhook body (version 4) with an alerts list")]
    if str(payload.get("version", "4")) != "4":
        return [], [("version", "only webhook payload version 4 is understood")]
    raw_alerts = payload["alerts"]
    if len(raw_alerts) > MAX_ALERTS:
        return [], [
            ("alerts", f"at most {MAX_ALERTS} alerts per notification (set max_alerts on the webhook)")
        ]
    group_status = payload.get("status")
    alerts: list[Alert] = []
    problems: list[tuple[str, str]] = []
    for index, raw in enumerate(raw_alerts):
        path = f"alerts[{index}]"
        if not isinstance(raw, Mapping):
            problems.append((path, "an object with labels"))
            continue
        labels = _strings(raw.get("labels") or {})
        annotations = _strings(raw.get("annotations") or {})
        if labels is None:
            problems.append((f"{path}.labels", "an object of string values"))
            continue
        if annotations is None:
            problems.append((f"{path}.annotations", "an object of string values"))
            continue
        status = raw.get("status", group_status)
        if status not in ("firing", "resolved"):
            problems.append((f"{path}.status", "firing or resolved"))
            continue
        starts_at = raw.get("startsAt")
        starts_text = starts_at if isinstance(starts_at, str) else ""
        alerts.append(
            Alert(
                index=index,
                status=status,
                labels=labels,
                annotations=annotations,
                starts_at=_parse_time(starts_text),
                starts_at_text=starts_text[:64],
                fingerprint=str(raw.get("fingerprint") or "")[:64],
                generator_url=str(raw.get("generatorURL") or "")[:2000],
            )
        )
    return alerts, problems


def _label_values(labels: Mapping[str, str], names: Iterable[str]) -> list[tuple[str, str]]:
    return [(name, labels[name]) for name in names if labels.get(name)]


def judge(alert: Alert, scope: RolloutScope) -> Verdict:
    """Whether `alert` may roll back the release `scope` describes, and why (or why not)."""
    if alert.status != "firing":
        return Verdict(False, "resolved: only a firing alert rolls back")
    if alert.service != scope.service:
        return Verdict(False, f"about service {alert.service or '(none)'}, not {scope.service}")
    if alert.severity not in scope.severities:
        wanted = ", ".join(sorted(scope.severities))
        return Verdict(
            False, f"severity {alert.severity or '(none)'}: only {wanted} alerts roll back a release"
        )
    if alert.starts_at is None:
        return Verdict(
            False,
            f"startsAt {alert.starts_at_text or '(missing)'} is not a time: cannot tell whether "
            "the alert began during the rollout",
        )
    if scope.rollout_started_at is None:
        return Verdict(False, "the rollout has not started")
    if alert.starts_at < scope.rollout_started_at:
        return Verdict(
            False,
            f"started {alert.starts_at.isoformat()}, before the rollout began "
            f"({scope.rollout_started_at.isoformat()}): not caused by it",
        )
    for name, value in _label_values(alert.labels, TIER_LABELS):
        if value != WHOLE_SERVICE and value not in scope.tiers:
            return Verdict(
                False, f"{name}={value}: the release runs on {', '.join(sorted(scope.tiers)) or 'no tier'}"
            )
    for name, value in _label_values(alert.labels, REGION_LABELS):
        if value not in scope.regions:
            return Verdict(
                False,
                f"{name}={value}: the release runs in {', '.join(sorted(scope.regions)) or 'no region'}",
            )
    where = ", ".join(f"{k}={v}" for k, v in _label_values(alert.labels, (*TIER_LABELS, *REGION_LABELS)))
    return Verdict(
        True,
        f"{alert.severity} alert {alert.alertname or '(no alertname)'} for {scope.service}"
        f"{' (' + where + ')' if where else ''} started {alert.starts_at.isoformat()}, "
        f"after the rollout began ({scope.rollout_started_at.isoformat()})",
    )


def severities_problems(value: Any) -> list[str]:
    """Why `value` is not a usable list of rollback severities (empty: it is)."""
    if not isinstance(value, list) or not 1 <= len(value) <= 10:
        return ["a list of 1 to 10 severity label values"]
    if not all(isinstance(v, str) and 0 < len(v) <= 63 and v.strip() == v for v in value):
        return ["each a non-empty label value of at most 63 characters"]
    return []
