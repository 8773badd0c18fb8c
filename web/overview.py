"""Reads behind the overview page: every SLO with its latest status, filtered and sorted on the
server, plus per-service roll-ups and firing alerts.

A fixed number of queries whatever the number of SLOs (services, SLOs joined to their status,
firing alerts), and only the columns the table shows: the status rows' `windows`/`tiers` JSON is
large and is left in the database.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import F
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from controlplane.lib.charts import STATE_CSS, STATE_LABELS, STATE_RANK, percent, ratio, slo_state
from slo import selectors as catalog
from slo.budget.selectors import firing_alerts, status_stale_after_s
from slo.models.budget import status_burn_rates
from slo.spec import SERVICE_CLASSES, TIERS
from web.presenters import alert_name

BURN_COLUMNS = ("1h", "6h", "3d")
SORT_KEYS = (
    "state",
    "service",
    "slo",
    "tier",
    "class",
    "sli",
    "objective",
    "budget",
    "burn_1h",
    "burn_6h",
    "burn_3d",
    "alerts",
)
DEFAULT_SORT = "state"


@dataclass
class OverviewRow:
    """One SLO as the overview shows it."""

    id: int
    name: str
    service: str
    service_class: str
    tier: str
    sli_kind: str
    objective: float
    version: int
    state: str
    sli: float | None
    remaining: float | None
    burn: dict[str, float | None]
    evaluated_at: datetime | None
    alerts: list[str] = field(default_factory=list)
    no_data_reason: dict[str, Any] | None = None  # slo.budget.nodata's {code, message, since}

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def state_css(self) -> str:
        return STATE_CSS[self.state]

    @property
    def sli_text(self) -> str:
        return percent(self.sli)

    @property
    def remaining_text(self) -> str:
        return percent(self.remaining, 1)

    @property
    def burn_cells(self) -> list[tuple[str, str, bool]]:
        """(window, text, hot) per burn column; hot = spending faster than the budget allows."""
        return [(w, ratio(self.burn.get(w)), (self.burn.get(w) or 0) > 1) for w in BURN_COLUMNS]

    @property
    def burn_1h(self) -> float | None:
        return self.burn.get("1h")

    @property
    def burn_6h(self) -> float | None:
        return self.burn.get("6h")

    @property
    def burn_3d(self) -> float | None:
        return self.burn.get("3d")


@dataclass(frozen=True)
class OverviewFilters:
    """Validated query parameters: unknown values are dropped, never an error page."""

    service: str = ""
    tier: str = ""
    service_class: str = ""
    state: str = ""
    sort: str = DEFAULT_SORT
    descending: bool = False

    @classmethod
    def from_query(cls, query: Any) -> OverviewFilters:
        sort = str(query.get("sort", "") or DEFAULT_SORT)
        descending = sort.startswith("-")
        sort = sort.lstrip("-")
        tier = str(query.get("tier", ""))
        service_class = str(query.get("class", ""))
        state = str(query.get("state", ""))
        return cls(
            service=str(query.get("service", ""))[:63],
            tier=tier if tier in (*TIERS, "all") else "",
            service_class=service_class if service_class in SERVICE_CLASSES else "",
            state=state if state in STATE_RANK else "",
            sort=sort if sort in SORT_KEYS else DEFAULT_SORT,
            descending=descending and sort in SORT_KEYS,
        )

    @property
    def sort_param(self) -> str:
        return f"-{self.sort}" if self.descending else self.sort


def _sort_value(row: OverviewRow, key: str) -> tuple[Any, ...]:
    # Missing numbers sort last in ascending order (and first when reversed): "no data" is not 0.
    numeric = {
        "sli": row.sli,
        "objective": row.objective,
        "budget": row.remaining,
        "burn_1h": row.burn_1h,
        "burn_6h": row.burn_6h,
        "burn_3d": row.burn_3d,
    }
    if key in numeric:
        value = numeric[key]
        return (value is None, value if value is not None else 0.0, row.service, row.name)
    text = {
        "service": (row.service, row.name),
        "slo": (row.name, row.service),
        "tier": (row.tier, row.service, row.name),
        "class": (row.service_class, row.service, row.name),
    }
    if key in text:
        return text[key]
    if key == "alerts":
        return (-len(row.alerts), row.service, row.name)
    return (
        STATE_RANK[row.state],
        row.remaining if row.remaining is not None else float("inf"),
        row.service,
        row.name,
    )


def overview_rows(*, filters: OverviewFilters, now: datetime) -> list[OverviewRow]:
    """Active SLOs with their display state, filtered and sorted. Two queries."""
    slos = catalog.active_slos()
    if filters.service:
        slos = slos.filter(service__name=filters.service)
    if filters.tier == "all":
        slos = slos.filter(tier="")
    elif filters.tier:
        slos = slos.filter(tier=filters.tier)
    if filters.service_class:
        slos = slos.filter(service__service_class=filters.service_class)
    values = slos.values(
        "id",
        "name",
        "tier",
        "sli_kind",
        "objective",
        "version",
        service_name=F("service__name"),
        service_class=F("service__service_class"),
        evaluated_at=F("status__evaluated_at"),
        sli=F("status__sli"),
        data_quality=F("status__data_quality"),
        remaining=F("status__error_budget_remaining"),
        window_key=F("status__window_key"),
        window_data=F("status__window_data"),
        alert_state=F("status__alert_state"),
        no_data_reason=F("status__no_data_reason"),
    )
    firing: dict[int, list[str]] = defaultdict(list)
    alerts = firing_alerts().filter(slo__isnull=False, slo__archived_at__isnull=True)
    for slo_id, severity, kind in alerts.values_list("slo_id", "severity", "kind"):
        firing[slo_id].append(f"{severity} ({kind.replace('_', ' ')})")
    limit = status_stale_after_s()
    rows = []
    for item in values:
        burn_rates = status_burn_rates(item["window_key"] or "", item["window_data"])
        row = OverviewRow(
            id=item["id"],
            name=item["name"],
            service=item["service_name"],
            service_class=item["service_class"],
            tier=item["tier"],
            sli_kind=item["sli_kind"],
            objective=item["objective"],
            version=item["version"],
            state=slo_state(
                evaluated_at=item["evaluated_at"],
                data_quality=item["data_quality"],
                alert_state=item["alert_state"],
                remaining=item["remaining"],
                now=now,
                stale_after_s=limit,
            ),
            sli=item["sli"],
            remaining=item["remaining"],
            burn={window: burn_rates.get(window) for window in BURN_COLUMNS},
            evaluated_at=item["evaluated_at"],
            alerts=sorted(firing.get(item["id"], [])),
            no_data_reason=item["no_data_reason"],
        )
        if row.state in ("stale", "not_evaluated"):
            # an old verdict is shown as no verdict: the numbers would look current
            row.sli, row.remaining, row.burn = None, None, dict.fromkeys(BURN_COLUMNS)
        if filters.state and row.state != filters.state:
            continue
        rows.append(row)
    rows.sort(key=lambda r: _sort_value(r, filters.sort), reverse=filters.descending)
    return rows


@dataclass
class ServiceSummary:
    """A service's line on the overview: its SLOs counted by state and its firing alerts."""

    id: int
    name: str
    display_name: str
    service_class: str
    tiers: list[str]
    states: Counter[str]
    alerts: list[dict[str, Any]]

    @property
    def worst_state(self) -> str | None:
        return min(self.states, key=lambda s: STATE_RANK[s]) if self.states else None

    @property
    def worst_label(self) -> str:
        return STATE_LABELS[self.worst_state] if self.worst_state else "no SLOs"

    @property
    def worst_css(self) -> str:
        return STATE_CSS[self.worst_state] if self.worst_state else "nodata"

    @property
    def state_counts(self) -> list[tuple[str, int]]:
        return [
            (STATE_LABELS[s], n) for s, n in sorted(self.states.items(), key=lambda kv: STATE_RANK[kv[0]])
        ]


def service_summaries(*, rows: list[OverviewRow], filters: OverviewFilters) -> list[ServiceSummary]:
    """Every service (also those without SLOs), with the states of the rows shown. Two queries."""
    services = catalog.service_queryset()
    if filters.service:
        services = services.filter(name=filters.service)
    if filters.service_class:
        services = services.filter(service_class=filters.service_class)
    by_service: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        by_service[row.service][row.state] += 1
    alerts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    firing = firing_alerts().values_list(
        "service_id", "severity", "kind", "slo_id", "slo__name", "service__name"
    )
    for service_id, severity, kind, slo_id, slo_name, service_name in firing:
        # named by SLO and severity (the SLO page has its evidence); a cache alert by its service
        alerts[service_id].append(
            {
                "text": alert_name(slo_name=slo_name, severity=severity, kind=kind, service=service_name),
                "slo_id": slo_id,
            }
        )
    return [
        ServiceSummary(
            id=s.pk,
            name=s.name,
            display_name=s.display_name,
            service_class=s.service_class,
            tiers=list(s.tiers or []),
            states=by_service.get(s.name, Counter()),
            alerts=sorted(alerts.get(s.pk, []), key=lambda a: a["text"]),
        )
        for s in services.only("id", "name", "display_name", "service_class", "tiers")
    ]


def rows_html(rows: list[OverviewRow], *, slo_url: str, service_url: str) -> SafeString:
    """The SLO table's body, rendered in Python: at 1,000 rows the template engine's per-variable
    lookups cost most of the page's time (benchmarks/bench_overview.py). Every value is escaped
    here exactly as the template would; `slo_url` / `service_url` end with the id / name.
    """
    parts = []
    for row in rows:
        burn = "".join(
            f'<td class="num{" hot" if hot else ""}">{escape(text)}</td>'
            for _window, text, hot in row.burn_cells
        )
        alerts = " ".join(f'<span class="badge status-bad">{escape(a)}</span>' for a in row.alerts) or (
            '<span class="muted">none</span>'
        )
        spent = " status-bad" if row.remaining is not None and row.remaining <= 0 else ""
        why = ""
        if row.state == "no_data" and row.no_data_reason:
            reason = row.no_data_reason
            why = (
                f' <span class="small" title="{escape(reason.get("message", ""))}">'
                f"{escape(str(reason.get('code', '')).replace('_', ' '))}</span>"
            )
        parts.append(
            f'<tr><td><span class="badge status-{row.state_css}">{escape(row.state_label)}</span>{why}</td>'
            f'<td><a href="{escape(service_url)}{escape(row.service)}/">{escape(row.service)}</a></td>'
            f'<td><a href="{escape(slo_url)}{row.id}/">{escape(row.name)}</a></td>'
            f"<td>{escape(row.tier or 'chain')}</td><td>{escape(row.service_class)}</td>"
            f'<td class="num">{escape(row.sli_text)}</td><td class="num">{escape(str(row.objective))}%</td>'
            f'<td class="num{spent}">{escape(row.remaining_text)}</td>{burn}<td>{alerts}</td></tr>'
        )
    return mark_safe("\n".join(parts))  # noqa: S308 - every interpolated value is escaped above
