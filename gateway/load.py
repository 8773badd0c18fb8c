"""The load the reference gateway measures and reports into each request's routing context, so the
policy's admission control (rate limit, priorities, shedding) acts on live traffic.

Per request, in simulated arrival order (requests of a tick arrive evenly spread over it):

- `observed_rps`: requests admitted (or offloaded) in the last second. The rate limit compares
  this with `rate_limit_rps`, so a limit admits about that many requests a second and refuses the
  rest with 429 (a limit on the offered rate would refuse everything once exceeded).
- `load_pct`: requests offered in the last second as a percentage of the device's capacity
  (`[traffic] capacity_rps`, a quarter of it while the device is overloaded: thermal throttling).
  Shedding compares it with `shed_load_pct`.
- `request_age_ms`: how long the oldest request waiting for the local model has waited (from the
  local queue, gateway.batching; 0 without one).
"""

from __future__ import annotations

from collections import Counter, deque

WINDOW_S = 1.0
OVERLOAD_CAPACITY_FACTOR = 0.25


class LoadMeter:
    """Sliding one-second windows of offered and admitted requests. Not thread-safe: the traffic
    thread owns it; `snapshot` is read under the gateway's lock."""

    def __init__(self, capacity_rps: float, window_s: float = WINDOW_S) -> None:
        self.capacity_rps = capacity_rps
        self.window_s = window_s
        self._offered: deque[float] = deque()
        self._admitted: deque[float] = deque()
        self.admissions: Counter[str] = Counter()
        self.last: dict[str, float] = {"observed_rps": 0.0, "load_pct": 0.0, "request_age_ms": 0.0}

    def _trim(self, t: float) -> None:
        edge = t - self.window_s
        for window in (self._offered, self._admitted):
            while window and window[0] <= edge:
                window.popleft()

    def arrive(self, t: float, *, overloaded: bool = False, request_age_ms: float = 0.0) -> dict[str, float]:
        """The load signals a request arriving at `t` (seconds) is decided with."""
        self._trim(t)
        self._offered.append(t)
        capacity = self.capacity_rps * (OVERLOAD_CAPACITY_FACTOR if overloaded else 1.0)
        signals = {
            "observed_rps": len(self._admitted) / self.window_s,
            "load_pct": round(100.0 * len(self._offered) / self.window_s / capacity, 1),
            "request_age_ms": round(request_age_ms, 1),
        }
        self.last = signals
        return signals

    def settle(self, t: float, admission: str) -> None:
        """Count the policy's admission decision for the request that arrived at `t`."""
        self.admissions[admission] += 1
        if admission in ("admitted", "offloaded"):
            self._admitted.append(t)
