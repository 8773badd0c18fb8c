"""Region health from probes, so the policy's region rendezvous moves off an unhealthy region.

Every second the reference gateway probes each private-cloud region its policy names
(`regions.candidates`). A probe fails when the region is down: simulated, by a file named
`region-down-<region>` in the gateway's state folder (`touch` it to take the region down, remove it
to bring it back). A successful probe measures the round trip: the candidate's `rtt_ms` from the
gateway's region (40 ms when the policy gives none), with +-10 % jitter.

`RegionHealth` turns the probes into the routing context's `unhealthy_regions` (after
`FAIL_AFTER` failures in a row; healthy again after `RECOVER_AFTER` successes in a row, so one lost
probe does not move traffic back and forth) and `region_rtt_ms` (an average of the recent round trips).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAIL_AFTER = 2
RECOVER_AFTER = 3
RTT_ALPHA = 0.3
PROBE_INTERVAL_S = 1.0
DEFAULT_RTT_MS = 40.0
DOWN_FILE_PREFIX = "region-down-"


@dataclass
class RegionHealth:
    """One region's probe history (pure: fed probe results, no I/O)."""

    healthy: bool = True
    streak: int = 0  # consecutive results contradicting `healthy`
    rtt_ms: float | None = None
    probes: int = 0

    def observe(self, ok: bool, rtt_ms: float | None = None) -> None:
        self.probes += 1
        if ok and rtt_ms is not None:
            self.rtt_ms = (
                rtt_ms if self.rtt_ms is None else (1 - RTT_ALPHA) * self.rtt_ms + RTT_ALPHA * rtt_ms
            )
        if ok == self.healthy:
            self.streak = 0
            return
        self.streak += 1
        if self.streak >= (FAIL_AFTER if self.healthy else RECOVER_AFTER):
            self.healthy, self.streak = ok, 0


@dataclass
class RegionProber:
    """Probes the policy's regions at most once per PROBE_INTERVAL_S of simulated time."""

    state_dir: Path
    client_region: str
    seed: int
    regions: dict[str, RegionHealth] = field(default_factory=dict)
    _last: float | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def down(self, name: str) -> bool:
        return (self.state_dir / f"{DOWN_FILE_PREFIX}{name}").exists()

    def probe(self, now: float, candidates: Iterable[Any]) -> dict[str, Any]:
        """The context fields for requests decided now: `unhealthy_regions`, `region_rtt_ms`."""
        candidates = list(candidates)
        if self._last is None or now - self._last >= PROBE_INTERVAL_S:
            self._last = now
            for candidate in candidates:
                health = self.regions.setdefault(candidate.name, RegionHealth())
                if self.down(candidate.name):
                    health.observe(False)
                else:
                    base = candidate.rtt_ms.get(self.client_region, DEFAULT_RTT_MS)
                    health.observe(True, base * self.rng.uniform(0.9, 1.1))
        names = {c.name for c in candidates}
        return {
            "unhealthy_regions": sorted(n for n in names if not self.regions[n].healthy),
            "region_rtt_ms": {
                n: round(h.rtt_ms, 1) for n, h in self.regions.items() if n in names and h.rtt_ms is not None
            },
        }

    def snapshot(self) -> Mapping[str, Any]:
        return {
            name: {"healthy": h.healthy, "rtt_ms": round(h.rtt_ms, 1) if h.rtt_ms is not None else None}
            for name, h in self.regions.items()
        }
