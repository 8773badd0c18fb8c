"""Pure helpers for the dashboard's pages: display states, number formats and Plotly figures.

No Django import: figures are plain dicts (`{"data": [...], "layout": {...}}`) that the page hands
to the browser with `json_script`, and `static/js/charts.js` draws them. Keeping the figure shape
here (not in templates or JavaScript) makes it testable and identical on every page.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

# Display states of an SLO, worst first. Colour is never the only signal: every state has a word.
SLO_STATES = ("page", "ticket", "exhausted", "ok", "no_data", "stale", "not_evaluated", "unknown")
STATE_LABELS = {
    "page": "paging",
    "ticket": "ticket",
    "exhausted": "budget spent",
    "ok": "ok",
    "no_data": "no data",
    "stale": "stale status",
    "not_evaluated": "not evaluated yet",
    "unknown": "unknown",
}
STATE_CSS = {
    "page": "bad",
    "ticket": "warn",
    "exhausted": "bad",
    "ok": "ok",
    "no_data": "nodata",
    "stale": "nodata",
    "not_evaluated": "nodata",
    "unknown": "nodata",
}
STATE_RANK = {state: rank for rank, state in enumerate(SLO_STATES)}

# The palette is Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


def slo_state(
    *,
    evaluated_at: datetime | None,
    data_quality: str | None,
    alert_state: str | None,
    remaining: float | None,
    now: datetime,
    stale_after_s: float,
) -> str:
    """One display state per SLO. A status older than `stale_after_s` is `stale` whatever it said
    (the engine may be down: an old green must not look current); no data is never `ok`."""
    if evaluated_at is None:
        return "not_evaluated"
    if (now - evaluated_at).total_seconds() > stale_after_s:
        return "stale"
    if alert_state in ("page", "ticket"):
        return alert_state
    if remaining is not None and remaining <= 0:
        return "exhausted"
    if data_quality == "no_data" or remaining is None:
        return "no_data"
    if alert_state == "none":
        return "ok"
    return "unknown"


def percent(value: float | None, digits: int = 3) -> str:
    """0.99512 -> '99.512%'; None -> an em dash (never 0 or 100 for missing data)."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 100:.{digits}f}%"


def ratio(value: float | None, digits: int = 2) -> str:
    """A burn rate: 14.4 -> '14.40×'; None -> an em dash."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}×"


def duration(seconds: float | None) -> str:
    """Seconds as the largest sensible unit: 95 -> '1m 35s', 90000 -> '1d 1h'."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _clean(values: Iterable[Any]) -> list[Any]:
    """Non-finite floats become None: Plotly draws a gap, and JSON stays valid."""
    out: list[Any] = []
    for value in values:
        if isinstance(value, float) and not math.isfinite(value):
            out.append(None)
        else:
            out.append(value)
    return out


def _layout(
    title: str,
    y_title: str,
    *,
    y_format: str = "",
    y_range: Sequence[float] | None = None,
    x_title: str = "",
    barmode: str | None = None,
) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 15}},
        "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.2},
        "xaxis": {"title": {"text": x_title}, "automargin": True},
        "yaxis": {"title": {"text": y_title}, "tickformat": y_format, "automargin": True, "zeroline": True},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, sans-serif", "color": "#1b1f24"},
        "colorway": list(PALETTE),
    }
    if y_range is not None:
        layout["yaxis"]["range"] = list(y_range)
    if barmode:
        layout["barmode"] = barmode
    return layout


def line_figure(
    *,
    title: str,
    series: Sequence[Mapping[str, Any]],
    y_title: str,
    y_format: str = "",
    y_range: Sequence[float] | None = None,
    thresholds: Sequence[Mapping[str, Any]] = (),
    stacked: bool = False,
    x_range: Sequence[datetime] | None = None,
    markers: Sequence[Mapping[str, Any]] = (),
    spans: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Lines over time. `series`: `{name, x, y}`; `thresholds`: `{value, label}` drawn as dashed
    horizontal lines with their label (an alert threshold, an SLO objective). `x_range` fixes the
    time axis (the whole SLO window, however much of it has data); `markers` (`{at, kind, label}`,
    see `event_markers`) are events drawn as vertical lines with their label; `spans`
    (`{start, end, short, label}`) are time ranges shaded behind the lines (status corrections).

    A series with fewer than `FEW_POINTS` values is drawn with dots too: a single point on a
    line-only trace is invisible."""
    data = []
    for index, item in enumerate(series):
        mode = item.get("mode", "lines")
        if mode == "lines" and count_points({"data": [item]}) < FEW_POINTS:
            mode = "lines+markers"
        trace: dict[str, Any] = {
            "type": "scatter",
            "mode": mode,
            "name": item["name"],
            "x": list(item["x"]),
            "y": _clean(item["y"]),
            "connectgaps": False,
            "line": {"width": 2, "color": item.get("color", PALETTE[index % len(PALETTE)])},
        }
        if stacked:
            trace["stackgroup"] = "one"
        data.append(trace)
    layout = _layout(title, y_title, y_format=y_format, y_range=y_range)
    shapes, annotations = [], []
    for index, line in enumerate(thresholds):
        colour = line.get("color", "#cf222e" if index == 0 else "#9a6700")
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": line["value"],
                "y1": line["value"],
                "line": {"color": colour, "width": 1.5, "dash": "dash"},
            }
        )
        annotations.append(
            {
                "xref": "paper",
                "x": 1,
                "xanchor": "right",
                "yref": "y",
                "y": line["value"],
                "yanchor": "bottom",
                "text": line["label"],
                "showarrow": False,
                "font": {"size": 11, "color": colour},
            }
        )
    if x_range is not None:
        layout["xaxis"]["range"] = [_iso(x_range[0]), _iso(x_range[1])]
        layout["xaxis"]["type"] = "date"
    span_shapes, span_notes = _span_shapes(spans)
    shapes += span_shapes
    annotations += span_notes
    marker_shapes, marker_notes = _marker_shapes(markers)
    shapes += marker_shapes
    annotations += marker_notes
    if shapes:
        layout["shapes"] = shapes
        layout["annotations"] = annotations
    return {"data": data, "layout": layout}


# Events marked on time charts. Colour is never the only signal: every marker has a word and a dash.
MARKER_STYLES = {
    "release": {"color": "#0072B2", "dash": "dot", "word": "release"},
    "release_done": {"color": "#009E73", "dash": "dot", "word": "release done"},
    "rollback": {"color": "#cf222e", "dash": "solid", "word": "rollback"},
    "alert_firing": {"color": "#D55E00", "dash": "dashdot", "word": "alert"},
    "alert_resolved": {"color": "#56B4E9", "dash": "dashdot", "word": "resolved"},
}
MAX_MARKERS = 40


# Shaded time ranges (status corrections): tinted, outlined and labelled, so colour is not the only signal.
SPAN_STYLE = {"fillcolor": "rgba(128, 128, 128, 0.18)", "line": "#6e7781", "word": "correction"}
MAX_SPANS = 60


def _span_shapes(spans: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A shaded rectangle over each span's time range, labelled at its start."""
    shapes, annotations = [], []
    for span in list(spans)[-MAX_SPANS:]:
        start, end = _iso(span["start"]), _iso(span["end"])
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "x0": start,
                "x1": end,
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "layer": "below",
                "fillcolor": SPAN_STYLE["fillcolor"],
                "line": {"color": SPAN_STYLE["line"], "width": 0.5, "dash": "dot"},
            }
        )
        annotations.append(
            {
                "xref": "x",
                "x": start,
                "yref": "paper",
                "y": 0,
                "yanchor": "bottom",
                "xanchor": "left",
                "text": span.get("short") or SPAN_STYLE["word"],
                "hovertext": span.get("label", ""),
                "showarrow": False,
                "font": {"size": 10, "color": SPAN_STYLE["line"]},
            }
        )
    return shapes, annotations


def _iso(moment: datetime | str) -> str:
    return moment if isinstance(moment, str) else moment.isoformat()


def _marker_shapes(markers: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Vertical lines at each marker's time with a short rotated label along the top."""
    shapes, annotations = [], []
    for marker in list(markers)[-MAX_MARKERS:]:
        style = MARKER_STYLES.get(marker.get("kind", ""), MARKER_STYLES["release"])
        at = _iso(marker["at"])
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "x0": at,
                "x1": at,
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "line": {"color": style["color"], "width": 1.5, "dash": style["dash"]},
            }
        )
        annotations.append(
            {
                "xref": "x",
                "x": at,
                "yref": "paper",
                "y": 1,
                "yanchor": "top",
                "xanchor": "left",
                "text": marker.get("short") or style["word"],
                "hovertext": marker.get("label", ""),
                "showarrow": False,
                "textangle": -90,
                "font": {"size": 10, "color": style["color"]},
            }
        )
    return shapes, annotations


def event_markers(
    *, releases: Iterable[Mapping[str, Any]] = (), alerts: Iterable[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Release and alert events as chart markers `{at, kind, short, label}`, oldest first.

    `releases`: `{at, kind ("release" | "release_done" | "rollback"), release_id, label}` (see
    routing's `release_markers`); `alerts`: `{at, state ("firing" | "resolved"), severity}`."""
    out = []
    for item in releases:
        kind = item.get("kind", "release")
        word = MARKER_STYLES.get(kind, MARKER_STYLES["release"])["word"]
        out.append(
            {
                "at": item["at"],
                "kind": kind if kind in MARKER_STYLES else "release",
                "short": f"{word} #{item.get('release_id')}",
                "label": item.get("label") or word,
            }
        )
    for item in alerts:
        firing = item.get("state") == "firing"
        severity = item.get("severity") or "alert"
        out.append(
            {
                "at": item["at"],
                "kind": "alert_firing" if firing else "alert_resolved",
                "short": f"{severity} {'fires' if firing else 'resolved'}",
                "label": f"{severity} alert {'fired' if firing else 'resolved'}",
            }
        )
    out.sort(key=lambda m: _iso(m["at"]))
    return out


def bar_figure(
    *,
    title: str,
    categories: Sequence[str],
    series: Sequence[Mapping[str, Any]],
    y_title: str,
    y_format: str = "",
    stacked: bool = True,
    thresholds: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Bars per category, one trace per series (`{name, y}`), stacked by default."""
    data = [
        {
            "type": "bar",
            "name": item["name"],
            "x": list(categories),
            "y": _clean(item["y"]),
            "marker": {"color": item.get("color", PALETTE[index % len(PALETTE)])},
        }
        for index, item in enumerate(series)
    ]
    figure = line_figure(title=title, series=[], y_title=y_title, y_format=y_format, thresholds=thresholds)
    figure["data"] = data
    figure["layout"]["barmode"] = "stack" if stacked else "group"
    figure["layout"]["hovermode"] = "closest"
    return figure


def has_points(figure: Mapping[str, Any]) -> bool:
    """True when any trace has a non-null value: otherwise the page shows "no data yet"."""
    return any(value is not None for trace in figure.get("data", []) for value in trace.get("y", []))


# Below this many values a line says little: the page says how many points there are and why.
FEW_POINTS = 3


def count_points(figure: Mapping[str, Any]) -> int:
    """The most non-null values any one trace has."""
    return max(
        (sum(value is not None for value in trace.get("y", [])) for trace in figure.get("data", [])),
        default=0,
    )


class Chart:
    """A figure with what the page needs around it: an element id, an accessible title, and the
    "no data yet" state (a chart without a single value is not drawn as an empty grid)."""

    def __init__(
        self,
        chart_id: str,
        figure: dict[str, Any],
        *,
        caption: str = "",
        empty_hint: str = "",
        few_hint: str = "",
        markers: Sequence[Mapping[str, Any]] = (),
        spans: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.id = chart_id
        self.figure = figure
        self.title = str(figure.get("layout", {}).get("title", {}).get("text", chart_id))
        self.caption = caption
        self.empty_hint = empty_hint
        self.has_data = has_points(figure)
        self.points = count_points(figure)
        # Too few points: still drawn (with dots), and the page says so, and why.
        self.too_few = self.has_data and self.points < FEW_POINTS
        self.few_hint = few_hint
        # The markers in words too, for readers who cannot see the lines.
        self.markers = [
            {
                "at": m["at"],
                "kind": MARKER_STYLES.get(m.get("kind", ""), MARKER_STYLES["release"])["word"],
                "label": m.get("label", ""),
            }
            for m in list(markers)[-MAX_MARKERS:]
        ]
        # The shaded spans in words too.
        self.spans = [
            {"start": s["start"], "end": s["end"], "label": s.get("label", "")}
            for s in list(spans)[-MAX_SPANS:]
        ]


def in_zone(figure: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    """`figure` with every time on its x axis shown in `zone`, and the zone named in the axis title.

    Plotly draws a date string's wall time and drops its offset, so a UTC time would be drawn as UTC
    whatever the reader chose. Aware datetimes and ISO strings with an offset (trace `x`, the axis
    range, markers' and spans' x positions) become that zone's wall time; anything else is kept."""
    moved = False

    def local(value: Any) -> Any:
        nonlocal moved
        moment = value
        if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value
        if isinstance(moment, datetime) and moment.tzinfo is not None:
            moved = True
            return moment.astimezone(zone).replace(tzinfo=None).isoformat()
        return value

    out = copy.deepcopy(dict(figure))
    for trace in out.get("data", []):
        if isinstance(trace.get("x"), list):
            trace["x"] = [local(v) for v in trace["x"]]
    layout = out.get("layout", {})
    for item in layout.get("shapes", []) + layout.get("annotations", []):
        if item.get("xref", "x") != "paper":
            for key in ("x", "x0", "x1"):
                if key in item:
                    item[key] = local(item[key])
    xaxis = layout.get("xaxis", {})
    if isinstance(xaxis.get("range"), list):
        xaxis["range"] = [local(v) for v in xaxis["range"]]
    if moved:
        name = getattr(zone, "key", None) or str(zone)
        title = xaxis.setdefault("title", {})
        text = title.get("text") or "Time"
        title["text"] = f"{text} ({name})"
    return out
