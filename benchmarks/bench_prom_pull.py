"""Pull 30 days of one latency SLO (good + valid, per minute) from a real Prometheus; target <= 5 s.

History: 3 routes x (the threshold bucket + the count) = 6 counter series, scraped every 15 s for
30 days (1.04 M samples), with a counter reset and a scrape gap, backfilled into TSDB blocks. The
measured part is `PrometheusPuller.pull_sli` over the whole 30 days (43,200 minutes, so 4 query_range
requests of <= 11,000 points per query), cold (first pull after start) and warm. The result is
checked minute by minute against the generated counts.

    .venv/bin/python benchmarks/bench_prom_pull.py  # writes benchmarks/results/prom_pull.json
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slo.contract import REQUEST_DURATION, sli_queries  # noqa: E402
from slo.counters import from_epoch_minute  # noqa: E402
from slo.prom import PrometheusPuller  # noqa: E402
from slo.spec import SloSpec  # noqa: E402
from tests.support.prometheus import (  # noqa: E402
    SCRAPE_OFFSETS_S,
    History,
    SeriesHistory,
    expected_sum,
    history_start_s,
    require_prometheus,
    start_with_history,
)

DAYS = 30
TARGET_S = 5.0
ROUTES = ("local", "cache", "private_cloud")


def build_history() -> History:
    minutes = DAYS * 24 * 60
    rng = np.random.default_rng(11)
    h = History(start_s=history_start_s(days_ago=DAYS + 1), minutes=minutes)
    base = {"service": "shelf-vision", "tier": "edge", "outcome": "ok"}
    for k, route in enumerate(ROUTES):
        total = rng.integers(100, 400, size=minutes)
        good = total - rng.integers(0, 8, size=minutes)
        observed = np.ones(minutes, dtype=np.bool_)
        resets: frozenset[int] = frozenset()
        if k == 1:
            observed[20_000:20_007] = False  # a 7-minute scrape gap
        if k == 2:
            resets = frozenset({30_000})  # gateway restart
            total[30_000], good[30_000] = 5, 4
        labels = {**base, "route": route}
        h.add(
            SeriesHistory(
                f"{REQUEST_DURATION}_bucket",
                {**labels, "le": "0.3"},
                good,
                observed,
                resets,
                SCRAPE_OFFSETS_S,
            )
        )
        h.add(SeriesHistory(f"{REQUEST_DURATION}_count", labels, total, observed, resets, SCRAPE_OFFSETS_S))
    return h


def main() -> int:
    require_prometheus()
    spec = SloSpec.model_validate(
        {
            "name": "fast-answers",
            "service": "shelf-vision",
            "tier": "edge",
            "sli": {"kind": "latency", "threshold_ms": 300},
            "objective": 99.5,
            "window": {"type": "rolling", "days": DAYS},
        }
    )
    queries = sli_queries(spec)
    t = time.perf_counter()
    history = build_history()
    with tempfile.TemporaryDirectory(prefix="bench-prom-") as tmp:
        server = start_with_history(Path(tmp), history)
        setup_s = time.perf_counter() - t
        try:
            puller = PrometheusPuller(server.url)
            start = from_epoch_minute(history.start_s // 60)
            end = start + timedelta(minutes=history.minutes)
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                good, valid = puller.pull_sli(queries, start, end)
                runs.append(time.perf_counter() - t)
        finally:
            server.stop()

    series = [(s.name, s.labels) for s in history.series]
    want_good = expected_sum(history, [x for x in series if x[0].endswith("_bucket")])
    want_valid = expected_sum(history, [x for x in series if x[0].endswith("_count")])
    exact = all(
        np.array_equal(got.present, want[1]) and np.array_equal(got.values[got.present], want[0][want[1]])
        for got, want in ((good, want_good), (valid, want_valid))
    )
    samples = sum(int(s.observed.sum()) * len(s.offsets_s) for s in history.series)
    result = {
        "benchmark": "prom_pull",
        "days": DAYS,
        "minutes": history.minutes,
        "series": len(history.series),
        "raw_samples": samples,
        "setup_s": round(setup_s, 2),
        "pull_cold_s": round(runs[0], 3),
        "pull_warm_s": round(min(runs[1:]), 3),
        "target_s": TARGET_S,
        "within_target": runs[0] <= TARGET_S,
        "exact": exact,
        "missing_minutes": int((~valid.present).sum()),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    out = ROOT / "benchmarks" / "results" / "prom_pull.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if exact and result["within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
