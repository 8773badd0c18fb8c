"""Benchmark: the budget engine's pure core on 10,000 SLOs with 28 days of per-minute traffic.

Run: `.venv/bin/python benchmarks/bench_engine_core.py [--slos 10000] [--seed 1]`

Data shape, as the Django side would serve it (DESIGN.md: long windows read hourly rollups, short
ones minute buckets). Holding 28 days of minutes for 10,000 SLOs would be 10,000 x 40,320 x 3
arrays (about 2.4 GB even as int32), so:

- minute buckets (int32 good/valid + a present mask) for the last 3 days plus the current partial
  hour, starting on an hour boundary: every burn window (5m .. 3d) is exact to the minute;
- hourly rollups (good, valid, minutes present) for the 25 days before that: the 28-day period is
  whole hours plus the exact minutes; the split oldest hour (< 60 minutes) is reported as missing.

Timed separately: building per-SLO parameters from specs, the O(n) window sums (one cumulative
sum per array, in blocks of rows), `evaluate_batch` on the sums (what runs when pre-aggregated
sums come straight from SQL), and materialising every per-SLO result object as JSON-ready dicts.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from slo.engine import (  # noqa: E402 (the path insert above makes the repo importable)
    ALERT_STATES,
    DATA_QUALITY,
    WindowSums,
    batch_params,
    evaluate_batch,
    window_sums_with_rollups,
)
from slo.spec import SloSpec  # noqa: E402

MINUTES_PAST_HOUR = 37  # "now" is 37 minutes into the current hour
MINUTE_SPAN = 3 * 24 * 60 + MINUTES_PAST_HOUR
HOURLY_SPAN = 25 * 24  # 28 days - 3 days
GENERATE_ROWS = 1000


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if platform.system() == "Darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def make_specs(n_slos: int, rng: np.random.Generator) -> list[SloSpec]:
    objectives = rng.choice([99.0, 99.5, 99.9, 99.95], size=n_slos)
    return [
        SloSpec.model_validate(
            {
                "name": f"slo-{i}",
                "service": f"svc-{i // 10}",
                "sli": {"kind": "availability"},
                "objective": float(objectives[i]),
                "window": {"type": "rolling", "days": 28},
                "min_valid_events": 50,
            }
        )
        for i in range(n_slos)
    ]


def make_traffic(n_slos: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Synthetic per-minute counts: per-SLO rate and error ratio, some incidents, gaps and idle SLOs."""
    rate = rng.lognormal(mean=3.0, sigma=1.5, size=n_slos)  # requests/minute, 1 .. thousands
    rate[rng.random(n_slos) < 0.01] = 0.0  # idle SLOs: must come out as no_data
    error_ratio = rng.choice([0.0001, 0.0005, 0.001, 0.005], size=n_slos)
    incident = rng.random(n_slos) < 0.02  # 2% of SLOs burn hard in the last 45 minutes
    gaps = rng.random(n_slos) < 0.05  # 5% of SLOs lost telemetry for 20 minutes yesterday

    minute_good = np.empty((n_slos, MINUTE_SPAN), dtype=np.int32)
    minute_valid = np.empty((n_slos, MINUTE_SPAN), dtype=np.int32)
    minute_present = np.ones((n_slos, MINUTE_SPAN), dtype=bool)
    for lo in range(0, n_slos, GENERATE_ROWS):
        rows = slice(lo, min(lo + GENERATE_ROWS, n_slos))
        valid = rng.poisson(rate[rows, None], size=(rows.stop - lo, MINUTE_SPAN))
        p_error = np.broadcast_to(error_ratio[rows, None], valid.shape).copy()
        p_error[incident[rows], -45:] = 0.05
        minute_valid[rows] = valid
        minute_good[rows] = valid - rng.binomial(valid, p_error)
    minute_present[gaps, 1440:1460] = False

    # Hourly rollups: sums of 60 minutes each, drawn directly (a sum of Poissons is Poisson).
    hourly_valid = rng.poisson(rate[:, None] * 60, size=(n_slos, HOURLY_SPAN)).astype(np.int64)
    hourly_good = hourly_valid - rng.binomial(hourly_valid, error_ratio[:, None])
    hourly_present = np.full((n_slos, HOURLY_SPAN), 60, dtype=np.int16)
    return {
        "minute_good": minute_good,
        "minute_valid": minute_valid,
        "minute_present": minute_present,
        "hourly_good": hourly_good,
        "hourly_valid": hourly_valid,
        "hourly_present": hourly_present,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slos", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "engine_core.json")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    started = time.perf_counter()
    specs = make_specs(args.slos, rng)
    traffic = make_traffic(args.slos, rng)
    generate_s = time.perf_counter() - started
    input_mib = sum(a.nbytes for a in traffic.values()) / 2**20
    rss_after_generation = peak_rss_mib()

    t0 = time.perf_counter()
    params = batch_params(specs)
    params_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    sums = window_sums_with_rollups(
        traffic["minute_good"],
        traffic["minute_valid"],
        traffic["minute_present"],
        traffic["hourly_good"],
        traffic["hourly_valid"],
        traffic["hourly_present"],
        params.window_minutes,
    )
    sums_s = time.perf_counter() - t0

    # The engine core proper, on sums already known; best of 5 to leave out first-touch noise.
    evaluate_runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        result = evaluate_batch(sums, params)
        evaluate_runs.append(time.perf_counter() - t0)

    # Pre-aggregated entry: the same sums as a (n_slos, n_windows, 2) array, as SQL would return.
    stacked = np.stack([sums.good, sums.valid], axis=-1)
    t0 = time.perf_counter()
    evaluate_batch(WindowSums.from_array(stacked, sums.missing_minutes), params)
    preaggregated_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    rss_before_materialise = peak_rss_mib()
    # One at a time, serialised and dropped, as a writer storing results in batches would.
    json_bytes = sum(len(json.dumps(result.slo(i).as_dict(), allow_nan=False)) for i in range(args.slos))
    materialise_s = time.perf_counter() - t0

    alert_counts = {state: int((result.alert_state == code).sum()) for code, state in enumerate(ALERT_STATES)}
    period_quality = {
        q: int((result.data_quality[:, -1] == code).sum()) for code, q in enumerate(DATA_QUALITY)
    }
    figures = {
        "slos": args.slos,
        "windows": list(params.window_names),
        "served_shape": {
            "minute_buckets_per_slo": MINUTE_SPAN,
            "hourly_rollups_per_slo": HOURLY_SPAN,
            "input_mib": round(input_mib, 1),
        },
        "seconds": {
            "generate_synthetic_data": round(generate_s, 3),
            "batch_params_from_specs": round(params_s, 4),
            "window_sums_minutes_plus_rollups": round(sums_s, 4),
            "evaluate_batch_best_of_5": round(min(evaluate_runs), 4),
            "evaluate_batch_runs": [round(r, 4) for r in evaluate_runs],
            "evaluate_batch_from_preaggregated_array": round(preaggregated_s, 4),
            "materialise_results_as_json": round(materialise_s, 3),
            "end_to_end_from_served_data": round(params_s + sums_s + min(evaluate_runs), 4),
        },
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "peak_rss_mib_after_generation": round(rss_after_generation, 1),
        "peak_rss_mib_before_materialise": round(rss_before_materialise, 1),
        "result_json_mib": round(json_bytes / 2**20, 1),
        "alert_states": alert_counts,
        "period_data_quality": period_quality,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
