"""Time to validate a 200-rule routing policy (parse + every semantic check, shadowing included).

Run: .venv/bin/python benchmarks/bench_validate.py   (writes benchmarks/results/validate.json)
Target: <= 50 ms per validation.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routing.policy import validate_policy  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "validate.json"
SIGNALS = ("temperature_c", "queue_ratio", "rtt_ms", "memory_headroom_pct", "payload_bytes", "request_age_ms")


def policy_with(rule_count: int) -> dict:
    rules = []
    for i in range(rule_count - 1):
        signal = SIGNALS[i % len(SIGNALS)]
        when: dict = {
            "confidence_min": round((i % 20) * 0.05, 2),
            "confidence_max": round((i % 20) * 0.05 + 0.05, 2),
            f"{signal}_min": float(i // 20),
            f"{signal}_max": float(i // 20 + 1),
        }
        if i % 5 == 0:
            when["region_in"] = [f"region-{i % 7}", f"region-{(i + 1) % 7}"]
        if i % 4 == 0:
            when["priority_in"] = ["high", "normal"]
        rules.append(
            {
                "name": f"rule-{i}",
                "when": when,
                "chain": [
                    {"route": "local", "timeout_ms": 30},
                    {"route": "cache", "timeout_ms": 5},
                    {"route": "private_cloud", "timeout_ms": 50, "retries": 1, "backoff_ms": 5},
                ],
            }
        )
    rules.append(
        {
            "name": "default",
            "chain": [{"route": "local", "timeout_ms": 40}, {"route": "public_cloud", "timeout_ms": 100}],
        }
    )
    return {"service": "bench-vision", "rules": rules}


def main() -> None:
    doc = policy_with(200)
    problems = validate_policy(doc, latency_slo_ms=200, service_class="interactive")
    assert not problems, problems[:3]
    timings = []
    for _ in range(30):
        started = time.perf_counter()
        validate_policy(doc, latency_slo_ms=200, service_class="interactive")
        timings.append((time.perf_counter() - started) * 1000)
    result = {
        "benchmark": "validate_policy",
        "rules": len(doc["rules"]),
        "runs": len(timings),
        "median_ms": round(statistics.median(timings), 2),
        "max_ms": round(max(timings), 2),
        "target_ms": 50,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"validate_policy, {result['rules']} rules: median {result['median_ms']} ms, "
        f"max {result['max_ms']} ms over {result['runs']} runs"
    )
    print(f"  written to {RESULTS}")


if __name__ == "__main__":
    main()
