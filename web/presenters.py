"""Evidence in words: gate results, canary measurements, alert events and Alertmanager receipts as
a sentence and a small table (what was measured, against what, verdict), with the raw JSON kept one
click away.

Pure functions from the stored evidence dicts (no Django import): the pages call them, the tests
feed them plain data. Evidence from older code may lack keys; every reader tolerates that and says
"unknown" rather than inventing a value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

GATE_TITLES = {
    "documents": "Documents",
    "error_budget": "Error budget",
    "budget": "Error budget",
    "paging": "Paging",
    "data_quality": "Data quality",
    "simulation": "Simulation",
    "canary": "Canary analysis",
    "approvals": "Approvals",
}
VERDICT_WORDS = {
    "pass": "passed",
    "fail": "failed",
    "inconclusive": "was inconclusive",
    "not_evaluated": "was not evaluated",
    "skipped": "was skipped",
}


@dataclass
class Row:
    """One line of an evidence table."""

    measured: str
    value: str
    against: str
    verdict: str


@dataclass
class Evidence:
    """What a page shows for one piece of evidence."""

    sentence: str
    rows: list[Row] = field(default_factory=list)
    raw_json: str = "{}"


def pretty_json(evidence: Any) -> str:
    """The raw evidence, indented and key-sorted (what the API returns, for the curious)."""
    return json.dumps(evidence if evidence is not None else {}, indent=2, sort_keys=True, default=str)


def number(value: Any, digits: int = 3) -> str:
    """A figure for people: 'no data' for None, up to `digits` significant digits otherwise."""
    if value is None:
        return "no data"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}g}" if isinstance(value, float) else f"{value:,}"
    return str(value)


def percent(value: Any, digits: int = 2) -> str:
    if value is None:
        return "no data"
    return f"{float(value) * 100:.{digits}f}%"


def words(text: Any) -> str:
    return str(text or "").replace("_", " ")


def _verdict(outcome: str) -> str:
    return VERDICT_WORDS.get(outcome, words(outcome))


def gate_title(gate: str) -> str:
    return GATE_TITLES.get(gate, words(gate).capitalize())


# --- gates -------------------------------------------------------------------------------------


def _documents(outcome: str, ev: dict[str, Any]) -> Evidence:
    checked = ev.get("checked") or {}
    rows = []
    for key, info in checked.items():
        info = info or {}
        if key == "model_version":
            rows.append(
                Row(
                    f"model {info.get('label', '?')}",
                    info.get("artifact_digest", "?")[:19],
                    "sha256 digest of this service",
                    "",
                )
            )
            continue
        rows.append(
            Row(
                f"{words(key)} v{info.get('version', '?')}",
                f"{info.get('state', '?')}, {info.get('errors', 0)} error(s)",
                "approved, valid",
                "",
            )
        )
    problems = ev.get("problems") or []
    for p in problems:
        rows.append(Row(p.get("path", "?"), p.get("message", ""), "no problem", "fail"))
    count = ev.get("problem_count", len(problems))
    gateways = ev.get("gateways")
    on = f" on {gateways} gateway bundle(s)" if gateways is not None else ""
    if count:
        sentence = f"Documents {_verdict(outcome)}: {count} problem(s) found{on}."
    else:
        sentence = f"Documents {_verdict(outcome)}: every document is approved and valid{on}."
    return Evidence(sentence, rows)


def _budget(outcome: str, ev: dict[str, Any]) -> Evidence:
    rows = [
        Row(
            f"budget remaining of {s.get('name', '?')}",
            percent(s.get("remaining")),
            "above 0% (policy)",
            "unknown" if s.get("data_quality") not in (None, "ok") else "",
        )
        for s in ev.get("slos") or []
    ]
    state = words(ev.get("state")) or "unknown"
    frozen = " The budget is frozen." if ev.get("frozen") else ""
    extra = ev.get("required_extra_approvals")
    extra_text = f" It needs {extra} extra approval(s)." if extra else ""
    reason = f" {ev['reason']}" if ev.get("reason") else ""
    note = f" ({ev['note']})" if ev.get("note") else ""
    sentence = (
        f"Error budget gate {_verdict(outcome)} for a {words(ev.get('change_kind')) or 'change'} of "
        f"{ev.get('service', 'the service')}: budget state {state}.{frozen}{extra_text}{reason}{note}"
    )
    return Evidence(sentence.strip(), rows)


def _paging(outcome: str, ev: dict[str, Any]) -> Evidence:
    paging = list(ev.get("paging_slos") or [])
    names = ", ".join(str(p.get("name", p)) if isinstance(p, dict) else str(p) for p in paging)
    rows = [
        Row(
            "SLOs paging",
            names or "none",
            words(ev.get("threshold")) or "none paging",
            "fail" if paging and outcome == "fail" else outcome,
        )
    ]
    if paging:
        sentence = f"Paging gate {_verdict(outcome)}: {len(paging)} SLO(s) page ({names})."
    else:
        sentence = f"Paging gate {_verdict(outcome)}: no SLO of the service is paging."
    if ev.get("note"):
        sentence += f" {ev['note'][0].upper()}{ev['note'][1:]}."
    return Evidence(sentence, rows)


def _data_quality(outcome: str, ev: dict[str, Any]) -> Evidence:
    rows = [
        Row(
            f"telemetry of {s.get('name', '?')}",
            words(s.get("data_quality")),
            "ok",
            "pass" if s.get("data_quality") == "ok" else "no verdict",
        )
        for s in ev.get("slos") or []
    ]
    if ev.get("reason"):
        sentence = f"Data quality gate {_verdict(outcome)}: {ev['reason']}."
    else:
        sentence = f"Data quality gate {_verdict(outcome)}: every SLO has complete, fresh telemetry."
    return Evidence(sentence, rows)


def _simulation(outcome: str, ev: dict[str, Any]) -> Evidence:
    rows = []
    if "candidate_budget_burn" in ev:
        burn = ev.get("candidate_budget_burn")
        rows.append(
            Row(
                f"predicted budget burn of v{ev.get('candidate_version', '?')}",
                _times(burn),
                "at most 1.00×",
                "unknown" if burn is None else "pass" if burn <= 1.0 else "fail",
            )
        )
        rows.append(
            Row(
                f"budget burn of baseline v{ev.get('baseline_version', '?')}",
                _times(ev.get("baseline_budget_burn")),
                "for comparison",
                "",
            )
        )
        shifts = ev.get("p95_shift_ms")
        if isinstance(shifts, dict):  # per route
            for route, shift in sorted(shifts.items()):
                if isinstance(shift, (int, float)):
                    rows.append(
                        Row(f"p95 latency shift on {route}", f"{shift:+.1f} ms", "for comparison", "")
                    )
        elif isinstance(shifts, (int, float)):
            rows.append(Row("p95 latency shift", f"{shifts:+.1f} ms", "for comparison", ""))
        if isinstance(ev.get("bad_ratio_shift"), (int, float)):
            rows.append(
                Row("bad-event ratio shift", f"{ev['bad_ratio_shift'] * 100:+.3f} pp", "for comparison", "")
            )
    if ev.get("reason"):
        sentence = f"Simulation {_verdict(outcome)}: {ev['reason']}."
    elif "candidate_budget_burn" in ev:
        contexts = ev.get("contexts") or {}
        replayed = f", replaying {contexts['n']} requests" if contexts.get("n") else ""
        traffic = f" drawn from {ev['traffic']}" if ev.get("traffic") else ""
        sentence = (
            f"Simulation {_verdict(outcome)}: predicted budget burn "
            f"{_times(ev.get('candidate_budget_burn'))} against a limit of 1.00×{replayed}{traffic}."
        )
    else:
        sentence = f"Simulation {_verdict(outcome)}."
    for p in ev.get("problems") or []:
        rows.append(Row(p.get("path", "?"), p.get("message", ""), "", ""))
    return Evidence(sentence, rows)


def _times(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "no data" if value is None else str(value)
    return f"{value:.2f}×"


CHECK_LABELS = {
    "canary_traffic": "canary traffic (events)",
    "p95_latency": "canary p95 latency (ms)",
    "error_ratio": "canary error ratio",
    "relative": "baseline traffic (events)",
}


def canary_check_row(check: dict[str, Any]) -> Row:
    """One canary check: measured value, the limit it was held against, and its outcome."""
    name = str(check.get("name", "?"))
    value, threshold, detail = check.get("value"), check.get("threshold"), check.get("detail") or ""
    if name.startswith("burn_rate:"):
        label = f"burn rate of {name.split(':', 1)[1]}"
        shown, against = _times(value), f"at most {_times(threshold)}" if threshold is not None else ""
    elif name == "error_ratio":
        label = CHECK_LABELS[name]
        shown = "no data" if value is None else f"{float(value):.4%}"
        against = f"at most {float(threshold):.4%}" if threshold is not None else ""
    elif name in ("canary_traffic", "relative"):
        label = CHECK_LABELS[name]
        shown = number(value if value is None else float(value), 6)
        against = f"at least {number(threshold)}" if threshold is not None else ""
    elif name == "p95_latency":
        label = CHECK_LABELS[name]
        shown = "no data" if value is None else f"{float(value):.1f} ms"
        against = f"at most {float(threshold):.1f} ms" if threshold is not None else ""
    else:
        label, shown, against = words(name), number(value), number(threshold) if threshold is not None else ""
    if detail:
        against = f"{against} ({detail})" if against else detail
    return Row(label, shown, against, str(check.get("outcome", "")))


def _canary(outcome: str, ev: dict[str, Any]) -> Evidence:
    checks = ev.get("checks") or []
    rows = [canary_check_row(c) for c in checks]
    window = ev.get("window") or {}
    span = ""
    if window.get("start") and window.get("end"):
        span = f" over {window['start'][11:16]}–{window['end'][11:16]} UTC"
    canaries = len(ev.get("canary_gateways") or [])
    baselines = len(ev.get("baseline_gateways") or [])
    groups = (
        f" ({canaries} canary against {baselines} baseline gateway(s))" if "canary_gateways" in ev else ""
    )
    verdict = ev.get("verdict", outcome)
    failing = [r.measured for r in rows if r.verdict == "fail"]
    unsure = [r.measured for r in rows if r.verdict == "inconclusive"]
    if failing:
        why = ": " + ", ".join(failing) + " above the limit"
    elif unsure:
        why = ": no verdict on " + ", ".join(unsure)
    else:
        why = ": every check within its limit" if rows else ""
    sentence = f"Canary measurement{span}{groups} {_verdict(verdict)}{why}."
    return Evidence(sentence, rows)


def _generic(gate: str, outcome: str, ev: dict[str, Any]) -> Evidence:
    reason = ev.get("reason") or ev.get("paused_reason")
    sentence = f"{gate_title(gate)} {_verdict(outcome)}" + (f": {reason}." if reason else ".")
    rows = [
        Row(words(k), number(v), "", "")
        for k, v in ev.items()
        if isinstance(v, (int, float, str, bool)) and k not in ("reason", "paused_reason")
    ]
    return Evidence(sentence, rows)


_GATES = {
    "documents": _documents,
    "error_budget": _budget,
    "budget": _budget,
    "paging": _paging,
    "data_quality": _data_quality,
    "simulation": _simulation,
    "canary": _canary,
}


def gate_evidence(gate: str, outcome: str, evidence: dict[str, Any] | None) -> Evidence:
    """A gate result as a sentence and a table, with its raw JSON. Evidence of an unexpected shape
    falls back to the generic reading: a page never fails on stored evidence."""
    ev = evidence if isinstance(evidence, dict) else {}
    reader = _GATES.get(gate)
    try:
        present = reader(outcome, ev) if reader else _generic(gate, outcome, ev)
    except (TypeError, ValueError, AttributeError, KeyError):
        present = _generic(gate, outcome, ev)
    present.raw_json = pretty_json(evidence)
    return present


# --- alerts ------------------------------------------------------------------------------------


def alert_name(
    *, slo_name: str | None, severity: str, kind: str = "burn_rate", service: str | None = None
) -> str:
    """An alert as people say it: '<SLO> page (burn rate)', or '<service> ticket (cache hit drop)'."""
    subject = slo_name or service or "unknown"
    return f"{subject} {severity} ({words(kind)})"


def alert_evidence(*, kind: str, severity: str, state: str, evidence: dict[str, Any] | None) -> Evidence:
    """A burn-rate or cache alert transition: which windows burned how fast against which threshold."""
    ev = evidence if isinstance(evidence, dict) else {}
    try:
        return _alert_evidence(kind, severity, state, ev, evidence)
    except (TypeError, ValueError, AttributeError, KeyError):
        return Evidence(f"The {severity} {words(kind)} alert is {state}.", [], pretty_json(evidence))


def _alert_evidence(kind: str, severity: str, state: str, ev: dict[str, Any], evidence: Any) -> Evidence:
    rows: list[Row] = []
    if kind in ("burn_rate", "composite_burn"):
        tiers = [t for t in ev.get("tiers") or [] if t.get("severity", severity) == severity]
        for t in tiers:
            threshold = t.get("burn_rate_threshold")
            status = words(t.get("status"))
            rows.append(
                Row(
                    f"burn rate over {t.get('long_window', '?')}",
                    _times(t.get("long_burn_rate")),
                    f"above {_times(threshold)}",
                    status,
                )
            )
            rows.append(
                Row(
                    f"burn rate over {t.get('short_window', '?')}",
                    _times(t.get("short_burn_rate")),
                    f"above {_times(threshold)}",
                    status,
                )
            )
        wanted = "firing" if state == "firing" else "not_firing"
        deciding = [t for t in tiers if t.get("status") == wanted] or tiers
        if deciding:
            parts = "; ".join(
                f"{t.get('long_window', '?')} and {t.get('short_window', '?')} burned "
                f"{_times(t.get('long_burn_rate'))} and {_times(t.get('short_burn_rate'))} against "
                f"{_times(t.get('burn_rate_threshold'))}"
                for t in deciding
            )
            verb = "fired" if state == "firing" else "resolved"
            sentence = f"The {severity} alert {verb}: {parts}."
        else:
            sentence = f"The {severity} alert is {state}; no burn-rate figures were stored."
        for member in ev.get("burning_members") or []:
            rows.append(
                Row(
                    f"member {member.get('slo', '?')} over {member.get('window', '?')}",
                    _times(member.get("burn_contribution")),
                    "contribution to the composite's burn",
                    percent(member.get("share_of_burn"), 1)
                    if member.get("share_of_burn") is not None
                    else "",
                )
            )
        if ev.get("burning_member"):
            sentence += f" Burning member: {ev['burning_member']}."
    else:
        for key, value in sorted(ev.items()):
            rows.append(
                Row(
                    words(key),
                    number(value) if not isinstance(value, float) or value > 1 else percent(value),
                    "",
                    "",
                )
            )
        sentence = f"The {severity} {words(kind)} alert is {state}."
        if "relative_drop" in ev:
            sentence = (
                f"The {severity} cache alert is {state}: hit rate dropped by "
                f"{percent(ev['relative_drop'], 1)} against the baseline."
            )
        elif "stale_rate" in ev:
            sentence = (
                f"The {severity} stale-hit alert is {state}: stale rate {percent(ev.get('stale_rate'), 1)} "
                f"against at most {percent(ev.get('max_stale_rate'), 1)}."
            )
    return Evidence(sentence, rows, pretty_json(evidence))


def rollback_evidence(*, trigger: str, reason: str, evidence: dict[str, Any] | None) -> Evidence:
    """Why a rollback happened, in words: the alerts, the canary measurement or the failed gates."""
    ev = evidence if isinstance(evidence, dict) else {}
    sentence = f"Rolled back by {words(trigger)}: {reason}" if reason else f"Rolled back by {words(trigger)}."
    try:
        rows = _rollback_rows(ev)
    except (TypeError, ValueError, AttributeError, KeyError):
        rows = []
    return Evidence(sentence, rows, pretty_json(evidence))


def _rollback_rows(ev: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if ev.get("alerts"):
        for alert in ev["alerts"]:
            labels = alert.get("labels") or {}
            rows.append(
                Row(
                    f"alert {labels.get('alertname', '?')} ({labels.get('severity', '?')})",
                    str(alert.get("status", "")),
                    f"since {alert.get('startsAt', '?')}",
                    str(alert.get("why", "")),
                )
            )
    if ev.get("measurement"):
        rows += _canary("fail", ev["measurement"]).rows
    for failed in ev.get("gates") or []:
        rows.append(
            Row(
                gate_title(str(failed.get("gate", "?"))),
                gate_evidence(str(failed.get("gate", "")), "fail", failed.get("evidence")).sentence,
                "",
                "fail",
            )
        )
    return rows


def stage_label(stage: str) -> str:
    """'canary:0' -> 'canary, wave 1'; other stages in words."""
    name, _, wave = str(stage or "").partition(":")
    if wave.isdigit():
        return f"{words(name)}, wave {int(wave) + 1}"
    return words(stage)
