"""The release state machine as a pure transition table (no Django).

    draft -> pending_approval -> approved -> rolling_out (wave k: delivering, baking) -> completed
    any open state -> paused (waiting for a person, with a reason) -> back where it paused
    pending_approval -> rejected;  draft / pending_approval / approved / paused -> cancelled
    rolling_out / paused (after gateways were touched) / completed -> rolled_back

Services look up `next_state(state, event)` and then *claim* the move with a conditional update on
the stored state, so a refused event raises here before anything is written and two workers can
never both take the same edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DRAFT = "draft"
PENDING_APPROVAL = "pending_approval"
APPROVED = "approved"
ROLLING_OUT = "rolling_out"
PAUSED = "paused"
COMPLETED = "completed"
REJECTED = "rejected"
CANCELLED = "cancelled"
ROLLED_BACK = "rolled_back"

STATES = (DRAFT, PENDING_APPROVAL, APPROVED, ROLLING_OUT, PAUSED, COMPLETED, REJECTED, CANCELLED, ROLLED_BACK)
FINAL_STATES = frozenset({COMPLETED, REJECTED, CANCELLED, ROLLED_BACK})
# States the periodic tick works on.
ACTIVE_STATES = (APPROVED, ROLLING_OUT)
# A paused release returns to the state it paused from (stored on the release).
RESUMABLE_FROM = frozenset({PENDING_APPROVAL, APPROVED, ROLLING_OUT})

# Events
SUBMIT = "submit"
APPROVE = "approve"  # the approval that completes the required number
REJECT = "reject"
START = "start"  # first wave begins
ADVANCE = "advance"  # next wave begins (a self-transition, recorded with the wave number)
COMPLETE = "complete"
PAUSE = "pause"
RESUME = "resume"
CANCEL = "cancel"
ROLLBACK = "rollback"

EVENTS = (SUBMIT, APPROVE, REJECT, START, ADVANCE, COMPLETE, PAUSE, RESUME, CANCEL, ROLLBACK)

# (state, event) -> next state. RESUME is resolved through the paused-from state.
TRANSITIONS: dict[tuple[str, str], str] = {
    (DRAFT, SUBMIT): PENDING_APPROVAL,
    (DRAFT, CANCEL): CANCELLED,
    (PENDING_APPROVAL, APPROVE): APPROVED,
    (PENDING_APPROVAL, REJECT): REJECTED,
    (PENDING_APPROVAL, PAUSE): PAUSED,
    (PENDING_APPROVAL, CANCEL): CANCELLED,
    (APPROVED, START): ROLLING_OUT,
    (APPROVED, PAUSE): PAUSED,
    (APPROVED, CANCEL): CANCELLED,
    (ROLLING_OUT, ADVANCE): ROLLING_OUT,
    (ROLLING_OUT, COMPLETE): COMPLETED,
    (ROLLING_OUT, PAUSE): PAUSED,
    (ROLLING_OUT, ROLLBACK): ROLLED_BACK,
    (PAUSED, CANCEL): CANCELLED,
    (PAUSED, ROLLBACK): ROLLED_BACK,
    # A release that completed can still be rolled back by a person (or a trigger) afterwards.
    (COMPLETED, ROLLBACK): ROLLED_BACK,
}


class TransitionRefused(Exception):
    """The table has no such edge. Carries the state and event for a readable 409."""

    def __init__(self, state: str, event: str, reason: str = "") -> None:
        self.state = state
        self.event = event
        self.reason = reason or f"cannot {event} a release that is {state}"
        super().__init__(self.reason)


def next_state(state: str, event: str, *, paused_from: str | None = None) -> str:
    """The state `event` leads to from `state`, or TransitionRefused."""
    if state not in STATES:
        raise TransitionRefused(state, event, f"unknown state {state!r}")
    if event not in EVENTS:
        raise TransitionRefused(state, event, f"unknown event {event!r}")
    if state == PAUSED and event == RESUME:
        if paused_from not in RESUMABLE_FROM:
            raise TransitionRefused(state, event, f"a release paused from {paused_from!r} cannot resume")
        return paused_from
    target = TRANSITIONS.get((state, event))
    if target is None:
        raise TransitionRefused(state, event)
    return target


def allowed_events(state: str, *, paused_from: str | None = None) -> list[str]:
    """Events the table accepts in `state` (for the API and the dashboard's buttons)."""
    events = [event for (source, event) in TRANSITIONS if source == state]
    if state == PAUSED and paused_from in RESUMABLE_FROM:
        events.append(RESUME)
    return sorted(set(events))


DEFAULT_WAVES: tuple[tuple[float, int], ...] = ((5.0, 600), (25.0, 900), (100.0, 0))


def _plan(gateway_count: int, plan: list[tuple[float, int]]) -> list[tuple[int, int, int, float]]:
    """`(index in plan, start, stop, bake_s)` of every kept wave (see `plan_waves`)."""
    if gateway_count <= 0:
        return []
    waves: list[tuple[int, int, int, float]] = []
    done = 0
    for index, (percent, bake_s) in enumerate(plan):
        last = index == len(plan) - 1
        wanted = (
            gateway_count
            if last
            else min(gateway_count, -(-int(round(percent * gateway_count * 100)) // 10_000))
        )
        stop = max(wanted, done + 1)
        stop = min(stop, gateway_count)
        if stop <= done:
            continue
        waves.append((index, done, stop, float(bake_s)))
        done = stop
    if done < gateway_count:  # cumulative plan below 100%: the last wave takes the rest
        last_index, last_start, _stop, last_bake_s = waves[-1]
        waves[-1] = (last_index, last_start, gateway_count, last_bake_s)
    return waves


def plan_waves(gateway_count: int, plan: list[tuple[float, int]]) -> list[tuple[int, int, float]]:
    """Split `gateway_count` ordered gateways into waves by cumulative percent.

    Returns `(start, stop, bake_s)` index ranges into the ordered gateways. Every wave gets at least one gateway (a 5% wave of 3
    gateways is 1 gateway, not 0); waves that would get none because earlier waves already took
    every gateway are dropped; the last kept wave always reaches every gateway.
    """
    return [(start, stop, bake_s) for _index, start, stop, bake_s in _plan(gateway_count, plan)]


# Whole gateways make a wave bigger than asked. Up to this many percentage points it is rounding
# (33% of 3 gateways is 1 gateway, 33.3%); beyond it (34% of 3 is 2 gateways, 66.7%; 5% of 3 is
# 1 gateway, 33.3%) the first wave is not what was asked and the author must confirm it.
WAVE_SIZE_TOLERANCE_POINTS = 1.0


@dataclass(frozen=True)
class WaveSize:
    """What one requested wave becomes on `gateway_count` gateways."""

    requested_percent: float
    bake_s: int
    gateways: int  # in this wave (0 when dropped)
    cumulative_gateways: int
    percent: float  # the effective cumulative share, rounded to 0.01
    dropped: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested_percent": self.requested_percent,
            "percent": self.percent,
            "gateways": self.gateways,
            "cumulative_gateways": self.cumulative_gateways,
            "bake_s": self.bake_s,
            "dropped": self.dropped,
        }


def wave_sizes(gateway_count: int, plan: list[tuple[float, int]]) -> list[WaveSize]:
    """Every requested wave with the gateways it really gets (one entry per requested wave)."""
    kept = {index: (start, stop) for index, start, stop, _bake in _plan(gateway_count, plan)}
    out, reached = [], 0
    for index, (percent, bake_s) in enumerate(plan):
        start, stop = kept.get(index, (reached, reached))
        reached = stop
        out.append(
            WaveSize(
                requested_percent=float(percent),
                bake_s=int(bake_s),
                gateways=stop - start,
                cumulative_gateways=stop,
                percent=round(100.0 * stop / gateway_count, 2) if gateway_count else 0.0,
                dropped=index not in kept,
            )
        )
    return out


def first_wave_oversize(sizes: list[WaveSize]) -> WaveSize | None:
    """The first wave when it is bigger than asked beyond rounding, else None."""
    if not sizes or sizes[0].dropped:
        return None
    first = sizes[0]
    return first if first.percent > first.requested_percent + WAVE_SIZE_TOLERANCE_POINTS else None
