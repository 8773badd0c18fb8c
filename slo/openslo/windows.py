"""OpenSLO time windows, budgeting methods and objectives, read into our spec's terms (pure)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from slo.openslo.mapping import (
    _BUDGETING,
    _BUDGETING_OUT,
    _DURATION_RE,
    _MINUTES,
    _OBJECTIVE_KEYS,
    _WINDOW_KEYS,
    DEFAULT_CALENDAR_START,
    LABEL_CALENDAR_START,
    LABEL_WINDOW_DURATION,
    _is_number,
    _Objective,
    _Report,
    _show,
    _string,
    _unknown_keys,
)


def _time_window(node: Any, path: str, report: _Report) -> tuple[dict[str, Any] | None, dict[str, str]]:
    if node is None:
        report.error(path, "required: one rolling or calendar window")
        return None, {}
    if not isinstance(node, list) or not node:
        report.error(path, "must be a list with exactly one time window")
        return None, {}
    for index in range(1, len(node)):
        report.drop(f"{path}[{index}]", "only one time window per SLO: dropped")
    path = f"{path}[0]"
    window: Any = node[0]
    if not isinstance(window, dict):
        report.error(path, "must be a mapping with duration")
        return None, {}
    _unknown_keys(window, _WINDOW_KEYS, path, report)
    duration = window.get("duration")
    match = _DURATION_RE.match(duration) if isinstance(duration, str) else None
    if match is None:
        report.error(
            f"{path}.duration",
            "required: a duration like 28d, 4w or 1M"
            if duration is None
            else f"{_show(duration)} is not a duration (a whole number and one of m h d w M Q Y, e.g. 28d)",
        )
        return None, {}
    count, unit = int(match[1]), match[2]
    calendar = window.get("calendar")
    is_rolling = window.get("isRolling")
    if is_rolling is not None and not isinstance(is_rolling, bool):
        report.error(f"{path}.isRolling", "must be true or false")
        return None, {}
    if is_rolling is None:
        is_rolling = calendar is None

    if is_rolling:
        if calendar is not None:
            report.drop(f"{path}.calendar", "a rolling window has no calendar: ignored")
        minutes = count * _MINUTES.get(unit, 0)
        if unit in "MQY":
            report.error(
                f"{path}.duration",
                f"a rolling {_show(duration)} has no fixed length (months differ): give it in days (e.g. 30d) or use a calendar window (isRolling: false, 1M)",
            )
            return None, {}
        if not minutes or minutes % 1440:
            report.error(
                f"{path}.duration", f"rolling windows are whole days (e.g. 28d, 4w): {_show(duration)} is not"
            )
            return None, {}
        days = minutes // 1440
        if days > 400:
            report.error(f"{path}.duration", "rolling windows are at most 400 days")
            return None, {}
        # `2w` stays `2w` on export
        return {"type": "rolling", "days": days}, (
            {} if duration == f"{days}d" else {LABEL_WINDOW_DURATION: str(duration)}
        )

    if duration == "1w":
        calendar_unit = "week"
    elif duration in ("1M", "1m"):
        calendar_unit = "month"
        if duration == "1m":
            report.drop(
                f"{path}.duration",
                "'1m' means one minute in OpenSLO; a one-minute calendar window is meaningless, so it is read as one month (1M)",
            )
    else:
        report.error(
            f"{path}.duration", f"calendar windows are one week (1w) or one month (1M), not {_show(duration)}"
        )
        return None, {}
    if calendar is None:
        calendar = {}
    if not isinstance(calendar, dict):
        report.error(f"{path}.calendar", "must be a mapping with startTime and timeZone")
        return None, {}
    _unknown_keys(calendar, {"startTime", "timeZone"}, f"{path}.calendar", report)
    timezone = _string(calendar, "timeZone", f"{path}.calendar", report) or "UTC"
    zones = _time_zones()
    if zones and timezone not in zones:
        report.error(
            f"{path}.calendar.timeZone", f"unknown time zone {timezone!r} (an IANA name like Europe/Paris)"
        )
        return None, {}
    labels = {}
    window = {"type": "calendar", "unit": calendar_unit, "timezone": timezone}
    start = calendar.get("startTime")
    if start is not None:
        start_text = str(start).strip()
        wall = _start_wall_time(start_text, timezone)
        if wall is None:
            report.error(
                f"{path}.calendar.startTime",
                f"{_show(start_text)} is not a date and time (e.g. 2022-01-01 12:00:00)",
            )
            return None, {}
        if not _aligned(wall, calendar_unit):
            window["start"] = wall.isoformat(sep=" ")  # periods start there (see slo.engine.windows)
        if start_text != window.get("start", DEFAULT_CALENDAR_START):
            labels[LABEL_CALENDAR_START] = start_text  # the text as written, for export
    return window, labels


def _start_wall_time(text: str, timezone: str) -> datetime | None:
    """OpenSLO's startTime as a local wall time in the window's zone (an offset, if given, converted)."""
    try:
        start_at = datetime.fromisoformat(text)
    except ValueError:
        return None
    if start_at.tzinfo is not None:
        try:
            start_at = start_at.astimezone(ZoneInfo(timezone))
        except (ValueError, OverflowError, ZoneInfoNotFoundError):
            return None
    if not 1 <= start_at.year <= 9998:
        return None
    return start_at.replace(tzinfo=None)


def _aligned(wall: datetime, unit: str) -> bool:
    """A start our default periods already have: local midnight on a Monday, or on the 1st."""
    midnight = (wall.hour, wall.minute, wall.second, wall.microsecond) == (0, 0, 0, 0)
    return midnight and (wall.day == 1 if unit == "month" else wall.isoweekday() == 1)


@functools.cache
def _time_zones() -> frozenset[str]:
    # empty when the system has no tz database: then we cannot check names and accept them
    return frozenset(available_timezones())


def _budgeting_method(value: Any, path: str, report: _Report) -> str | None:
    method = _BUDGETING.get(value.lower()) if isinstance(value, str) else None
    if method is None:
        message = "required" if value is None else f"unknown budgeting method {_show(value)}"
        report.error(path, f"{message}: Occurrences, Timeslices or RatioTimeslices")
    return method


def _objectives(
    node: Any, path: str, method: str | None, threshold: bool, report: _Report
) -> list[_Objective]:
    if node is None:
        report.error(path, "required: at least one objective")
        return []
    if not isinstance(node, list) or not node:
        report.error(path, "must be a non-empty list")
        return []
    out = []
    for index, objective in enumerate(node):
        parsed = _objective(objective, f"{path}[{index}]", method, threshold, report)
        if parsed is not None:
            out.append(parsed)
    return out


def _objective(
    node: Any, path: str, method: str | None, threshold: bool, report: _Report
) -> _Objective | None:
    if not isinstance(node, dict):
        report.error(path, "must be a mapping with target or targetPercent")
        return None
    errors_before = len(report.errors)
    _unknown_keys(node, _OBJECTIVE_KEYS, path, report)
    display_name = _string(node, "displayName", path, report) or ""
    target, target_percent = node.get("target"), node.get("targetPercent")
    percent = None
    if target is None and target_percent is None:
        report.error(f"{path}.target", "required: target (0-1) or targetPercent (0-100)")
    elif target is not None:
        if not _is_number(target) or not 0 < target < 1:
            report.error(
                f"{path}.target",
                f"must be a number between 0 and 1, exclusive (0.999 is 99.9%), got {_show(target)}",
            )
        else:
            percent = _percent_from_target(target)
            if percent <= 0 or percent >= 100:
                report.error(f"{path}.target", f"{_show(target)} is too close to 0 or 1")
        if target_percent is not None and percent is not None and target_percent != percent:
            report.error(f"{path}.targetPercent", "give target or targetPercent, not both")
    elif not _is_number(target_percent) or not 0 < target_percent < 100:
        report.error(
            f"{path}.targetPercent",
            f"must be a number between 0 and 100, exclusive, got {_show(target_percent)}",
        )
    else:
        percent = float(target_percent)

    op, value = node.get("op"), node.get("value")
    threshold_ms = None
    if threshold:
        if op not in (None, "lt", "lte", "gt", "gte"):
            report.error(f"{path}.op", f"unknown op {_show(op)}: lt, lte, gt or gte")
        elif op in ("gt", "gte"):
            report.error(
                f"{path}.op",
                f"op {op} cannot be expressed: a latency SLI counts values at or under the threshold (use lt or lte)",
            )
        elif op == "lt":
            report.drop(
                f"{path}.op", "op lt is applied as lte: a histogram bucket's upper bound counts as good"
            )
        if value is None:
            report.error(f"{path}.value", "required with a thresholdMetric: the threshold (milliseconds)")
        elif not _is_number(value) or value <= 0:
            report.error(f"{path}.value", f"must be a positive number (milliseconds), got {_show(value)}")
        else:
            threshold_ms = float(value)
    else:
        if op is not None and op not in ("lt", "lte", "gt", "gte"):
            report.error(f"{path}.op", f"unknown op {_show(op)}: lt, lte, gt or gte")
        # a ratio objective's op has no meaning here (the ratio is compared to the target): kept for export
        if value is not None:
            report.drop(f"{path}.value", "value applies only to a thresholdMetric: ignored")

    timeslice_target = node.get("timeSliceTarget")
    if timeslice_target is not None and method != "timeslices":
        report.drop(
            f"{path}.timeSliceTarget",
            f"used only with Timeslices budgeting: ignored with {_BUDGETING_OUT.get(method or '', 'this method')}",
        )
        timeslice_target = None
    elif timeslice_target is None and method == "timeslices":
        report.error(f"{path}.timeSliceTarget", "required with Timeslices budgeting")
    elif timeslice_target is not None and (not _is_number(timeslice_target) or not 0 < timeslice_target <= 1):
        report.error(f"{path}.timeSliceTarget", f"must be a number in (0, 1], got {_show(timeslice_target)}")
    window = node.get("timeSliceWindow")
    if window is not None:
        if method == "occurrences":
            report.drop(
                f"{path}.timeSliceWindow", "used only with time-slice budgeting: ignored with Occurrences"
            )
        elif _slice_minutes(window) != 1:
            report.drop(
                f"{path}.timeSliceWindow", f"not applied: our time slices are one minute, not {_show(window)}"
            )
    if len(report.errors) > errors_before or percent is None:
        return None
    return _Objective(
        path,
        percent,
        float(timeslice_target) if timeslice_target is not None else None,
        display_name,
        threshold_ms,
        op,
    )


def _slice_minutes(value: Any) -> float | None:
    if _is_number(value):  # a bare number is minutes
        return float(value)
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if match is None or match[2] not in _MINUTES:
        return None
    return int(match[1]) * _MINUTES[match[2]]


def _window_days(duration: str) -> int | None:
    """Whole days of a rolling duration like 28d or 2w, else None."""
    match = _DURATION_RE.match(duration)
    if match is None or match[2] not in _MINUTES:
        return None
    minutes = int(match[1]) * _MINUTES[match[2]]
    return minutes // 1440 if minutes % 1440 == 0 else None


def _percent_from_target(target: float) -> float:
    # 0.999 * 100 is 99.9 but 0.57 * 100 is 56.99999999999999: round off the float noise
    return round(target * 100, 10)
