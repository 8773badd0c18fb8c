"""Presenting a stored report: the HTML page's context and charts, the CSV export and the email.

Everything renders from `Report.numbers` alone, so a page or an email of an old report shows
exactly what was computed then. Charts are plain Plotly figures (`controlplane.lib.charts`)
handed to the page with `json_script` and drawn by `static/js/charts.js` (the CSP forbids inline
scripts).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from controlplane.lib.charts import Chart, bar_figure, duration, line_figure, percent, ratio
from slo.models.reports import Report
from slo.reports.compute import CSV_HEADER, csv_rows


def report_url(report: Report) -> str:
    """The report page's absolute URL (PUBLIC_URL + path): what emails link to."""
    return f"{settings.PUBLIC_URL}{reverse('reports:detail', args=[report.pk])}"


def report_csv(report: Report) -> str:
    """Every figure as tidy rows: section, service, subject, metric, value (docs/reports.md)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in csv_rows(report.numbers):
        writer.writerow(["" if value is None else value for value in row])
    return buffer.getvalue()


def _money(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"${value:,.{digits}f}"


def _slo_row(slo: dict[str, Any]) -> dict[str, Any]:
    period, at_end, trend = slo["period"], slo["window_at_end"], slo["burn_trend"]
    met = period["objective_met"]
    return {
        **slo,
        "sli_text": percent(period["sli"]),
        "objective_text": f"{slo['objective_percent']}%",
        "status": "met" if met else ("missed" if met is False else "no data"),
        "status_css": "ok" if met else ("bad" if met is False else "nodata"),
        "remaining_text": percent(period["error_budget_remaining_ratio"], 1),
        "consumed_text": "—"
        if period["error_budget_consumed"] is None
        else f"{period['error_budget_consumed']:,.0f}",
        "allowed_text": "—"
        if period["error_budget_total"] is None
        else f"{period['error_budget_total']:,.1f}",
        "burn_text": ratio(trend["current"]),
        "previous_burn_text": ratio(trend["previous"]),
        "trend_text": {"up": "worse ↑", "down": "better ↓", "flat": "flat →"}.get(trend["direction"], "—"),
        "window_text": f"{at_end['window']}: {percent(at_end['sli'])} SLI, "
        f"{percent(at_end['error_budget_remaining_ratio'], 1)} budget left",
        "alert_text": f"{slo['alerts']['episodes']} ({duration(slo['alerts']['firing_s'])})",
    }


def _service_context(service: dict[str, Any]) -> dict[str, Any]:
    releases = service["sections"].get("releases") or {"available": False}
    cost = service["cost"]
    return {
        **service,
        "slo_rows": [_slo_row(slo) for slo in service["slos"]],
        "episodes": [{**e, "duration_text": duration(e["duration_s"])} for e in service["alert_episodes"]],
        "releases": releases,
        "cost_text": {
            "cost_usd": _money(cost["cost_usd"], 2),
            "cost_per_1000_usd": _money(cost["cost_per_1000_usd"]),
            "cost_per_cache_hit_usd": _money(cost["cost_per_cache_hit_usd"], 6),
            "saved_per_hit_usd": _money(cost["saved_per_hit_usd"], 6),
            "net_saving_usd": _money(cost["net_saving_usd"], 2),
            "tiers": [
                {
                    "tier": tier,
                    "requests": f"{v['requests']:,.0f}",
                    "per_1000": _money(v["cost_per_1000_usd"]),
                }
                for tier, v in cost["tiers"].items()
            ],
            "token_tiers": [
                {
                    "tier": tier,
                    "tokens": f"{v['input_tokens'] + v['output_tokens']:,.0f}",
                    "token_cost": _money(v["token_cost_usd"], 2),
                    "per_1k_tokens": _money(v["cost_per_1k_tokens_usd"], 6),
                }
                for tier, v in ((cost.get("tokens") or {}).get("tiers") or {}).items()
            ],
        },
    }


def report_charts(report: Report) -> list[Chart]:
    """Per service: daily burn rate of each SLO, and budget consumed this period vs the previous."""
    charts = []
    for index, service in enumerate(report.numbers["services"]):
        series = [
            {
                "name": slo["name"],
                "x": [p["day"] for p in slo["daily"]],
                "y": [p["burn_rate"] for p in slo["daily"]],
                "mode": "lines+markers",
            }
            for slo in service["slos"]
        ]
        charts.append(
            Chart(
                f"report-burn-{index}",
                line_figure(
                    title=f"{service['name']}: burn rate per day",
                    series=series,
                    y_title="burn rate",
                    thresholds=[{"value": 1.0, "label": "1× = budget spent exactly over the period"}],
                ),
                caption="Per local day: (bad / valid) / (1 − objective). Gaps are days without traffic.",
                empty_hint="No budget buckets in this period.",
            )
        )
        names = [slo["name"] for slo in service["slos"]]

        def spent(figures: dict[str, Any]) -> float | None:
            remaining = figures["error_budget_remaining_ratio"]
            return None if remaining is None else 1.0 - remaining

        charts.append(
            Chart(
                f"report-budget-{index}",
                bar_figure(
                    title=f"{service['name']}: error budget spent",
                    categories=names,
                    stacked=False,
                    y_title="share of the period's budget",
                    y_format=".0%",
                    series=[
                        {
                            "name": "previous period",
                            "y": [spent(s["previous_period"]) for s in service["slos"]],
                        },
                        {"name": "this period", "y": [spent(s["period"]) for s in service["slos"]]},
                    ],
                    thresholds=[{"value": 1.0, "label": "budget exhausted"}],
                ),
                caption="Budget of each period counted over that period's own valid events.",
            )
        )
    return charts


def report_page_context(report: Report) -> dict[str, Any]:
    numbers = report.numbers
    charts = report_charts(report)
    services = []
    for index, service in enumerate(numbers["services"]):
        # two charts per service, in order (see report_charts)
        services.append({**_service_context(service), "charts": charts[2 * index : 2 * index + 2]})
    return {
        "report": report,
        "numbers": numbers,
        "summary": numbers["summary"],
        "period": numbers["period"],
        "services": services,
        "url": report_url(report),
    }


def report_email(report: Report, *, recipients: list[str]) -> EmailMultiAlternatives:
    """The email of a report: plain text and HTML (no scripts, no remote images) with a link to
    the page. Recipients go in To: they are the team the schedule is for."""
    # Mail clients do not run JavaScript: the email has the tables, the page has the charts.
    context = report_page_context(report)
    subject = f"[SLO report] {report.scope_value} · {report.period} {report.period_label}"
    text = render_to_string("reports/email.txt", context)
    html = render_to_string("reports/email.html", context)
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=recipients
    )
    message.attach_alternative(html, "text/html")
    return message
