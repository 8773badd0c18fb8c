"""Request collapsing: identical requests in flight share one inference when the policy says so
(`admission.collapse_requests`).

The reference gateway draws each request's content from `[traffic] distinct_requests` possible ones
(its own seeded RNG; 0, the default, makes every request distinct). A request whose decision says
`collapse` and whose content matches a request still in flight is answered with that request's
result when it completes: same route and outcome, no compute, egress or cost of its own, and only
the leader's remaining time as its latency.
"""

from __future__ import annotations

import random
from dataclasses import replace

from gateway.traffic import Outcome


class Collapser:
    """Leaders in flight by content key. Not thread-safe: the traffic thread owns it."""

    def __init__(self, distinct: int, seed: int) -> None:
        self.distinct = distinct
        self.rng = random.Random(seed)
        self._in_flight: dict[int, tuple[float, Outcome]] = {}
        self.collapsed = 0

    def key(self) -> int | None:
        """The content of the next request (None: distinct from every other)."""
        return self.rng.randrange(self.distinct) if self.distinct else None

    def follow(self, key: int | None, at: float) -> Outcome | None:
        """The shared answer for a request arriving at `at` (seconds), or None to run it."""
        if key is None:
            return None
        leader = self._in_flight.get(key)
        if leader is None or leader[0] <= at:
            return None
        done_at, outcome = leader
        self.collapsed += 1
        return replace(
            outcome,
            elapsed_ms=(done_at - at) * 1000.0,
            cost_usd=0.0,
            fallbacks=[],
            cache=[],
            compute_s={},
            egress_bytes=0,
            collapsed=True,
            stages={},
        )

    def lead(self, key: int | None, at: float, outcome: Outcome) -> None:
        """Remember a request that ran, in flight until it completes."""
        if key is None or outcome.outcome == "shed":
            return
        self._in_flight[key] = (at + outcome.elapsed_ms / 1000.0, outcome)
        if len(self._in_flight) > 4 * self.distinct:
            self._in_flight = {k: v for k, v in self._in_flight.items() if v[0] > at}
