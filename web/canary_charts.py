"""The release page's canary charts: per wave, the canary group against the baseline group over the
stored canary measurements (gate results `canary` at stage `canary:<k>`), with the limit each
measurement was held against (relative to the baseline, so it is a line of its own, not a constant).

No Django import: takes the gate results' (stage, at, evidence) and returns `Chart`s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from controlplane.lib.charts import Chart, line_figure

BASELINE_COLOR = "#0072B2"
CANARY_COLOR = "#D55E00"
LIMIT_COLOR = "#cf222e"


def _check(evidence: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    return next((c for c in evidence.get("checks") or [] if c.get("name") == name), {})


def _group(evidence: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    return evidence.get(key) or {}


def _error_ratio(group: Mapping[str, Any]) -> float | None:
    requests = group.get("requests") or 0
    return (group.get("errors") or 0) / requests if requests > 0 else None


def _measured_at(evidence: Mapping[str, Any], at: datetime) -> str:
    """A measurement is drawn at the end of the window it measured (when it ran, if not recorded)."""
    window = evidence.get("window") or {}
    return str(window.get("end") or at.isoformat())


def canary_charts(measurements: Iterable[tuple[str, datetime, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """[{"wave": n, "charts": [p95 chart, error-ratio chart], "measurements": count}] per wave that
    has canary measurements, in wave order. `measurements`: (stage, at, evidence), oldest first."""
    by_wave: dict[int, list[tuple[datetime, Mapping[str, Any]]]] = defaultdict(list)
    for stage, at, evidence in measurements:
        if not stage.startswith("canary:"):
            continue
        try:
            wave = int(stage.split(":", 1)[1])
        except ValueError:
            continue
        by_wave[wave].append((at, evidence or {}))
    waves = []
    for wave in sorted(by_wave):
        rows = by_wave[wave]
        x = [_measured_at(ev, at) for at, ev in rows]
        p95 = line_figure(
            title=f"Wave {wave + 1}: p95 latency, canary vs baseline",
            y_title="p95 latency (ms)",
            series=[
                {
                    "name": "canary",
                    "x": x,
                    "y": [_group(ev, "canary").get("p95_ms") for _, ev in rows],
                    "color": CANARY_COLOR,
                },
                {
                    "name": "baseline",
                    "x": x,
                    "y": [_group(ev, "baseline").get("p95_ms") for _, ev in rows],
                    "color": BASELINE_COLOR,
                },
                {
                    "name": "limit (fails above)",
                    "x": x,
                    "y": [_check(ev, "p95_latency").get("threshold") for _, ev in rows],
                    "color": LIMIT_COLOR,
                },
            ],
        )
        errors = line_figure(
            title=f"Wave {wave + 1}: error ratio, canary vs baseline",
            y_title="errors / requests",
            y_format=".2%",
            series=[
                {
                    "name": "canary",
                    "x": x,
                    "y": [_error_ratio(_group(ev, "canary")) for _, ev in rows],
                    "color": CANARY_COLOR,
                },
                {
                    "name": "baseline",
                    "x": x,
                    "y": [_error_ratio(_group(ev, "baseline")) for _, ev in rows],
                    "color": BASELINE_COLOR,
                },
                {
                    "name": "limit (fails above)",
                    "x": x,
                    "y": [_check(ev, "error_ratio").get("threshold") for _, ev in rows],
                    "color": LIMIT_COLOR,
                },
            ],
        )
        for figure in (p95, errors):
            # the limit is a dashed line: colour is not the only way to tell it from the groups
            figure["data"][2]["line"]["dash"] = "dash"
        criteria = rows[-1][1].get("criteria") or {}
        caption = (
            f"{len(rows)} measurement{'s' if len(rows) != 1 else ''}. Limits: canary p95 at most "
            f"{100 * float(criteria.get('max_p95_increase', 0.1)):g}% above the baseline's; canary error ratio at most "
            f"{float(criteria.get('max_error_ratio_factor', 2.0)):g}× the baseline's "
            f"(floor {100 * float(criteria.get('error_ratio_floor', 0.001)):g}%)."
        )
        empty = "No baseline comparison yet: too little traffic, or no baseline gateways."
        waves.append(
            {
                "wave": wave + 1,
                "measurements": len(rows),
                "caption": caption,
                "charts": [
                    Chart(
                        f"chart-canary-{wave + 1}-p95",
                        p95,
                        empty_hint=empty,
                        few_hint="Measurements come every few minutes.",
                    ),
                    Chart(
                        f"chart-canary-{wave + 1}-errors",
                        errors,
                        empty_hint=empty,
                        few_hint="Measurements come every few minutes.",
                    ),
                ],
            }
        )
    return waves
