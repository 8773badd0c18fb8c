"""Decisions per second of routing.policy.decide on a 20-rule policy, one process.

Run: .venv/bin/python benchmarks/bench_decide.py   (writes benchmarks/results/decide.json)
Target: >= 200,000 decisions/s with explain=False.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routing.policy import compile_policy, decide, generate_contexts, validate_policy  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "decide.json"


def twenty_rule_policy() -> dict:
    cloud = [
        {"route": "cache", "timeout_ms": 10},
        {"route": "private_cloud", "timeout_ms": 60},
        {"route": "public_cloud", "timeout_ms": 70},
    ]
    rules = [{"name": "privacy", "when": {"privacy": True}, "chain": cloud[:2]}]
    rules.append(
        {
            "name": "offline",
            "when": {"network_quality_in": ["offline"]},
            "chain": [{"route": "local", "timeout_ms": 80}],
        }
    )
    for i in range(16):
        # a band of confidence per rule, each also gated on a device or network signal, so
        # typical requests walk well into the list before matching
        when: dict = {"confidence_min": i * 0.05, "confidence_max": i * 0.05 + 0.05}
        when[("temperature_c_min", "queue_ratio_min", "rtt_ms_max", "memory_headroom_pct_max")[i % 4]] = (
            80,
            2,
            30,
            15,
        )[i % 4]
        if i % 3 == 0:
            when["region_not_in"] = ["cn-north"]
        rules.append(
            {
                "name": f"band-{i}",
                "when": when,
                "chain": cloud if i % 2 else [{"route": "local", "timeout_ms": 40}, *cloud[:2]],
            }
        )
    rules.append({"name": "big-payload", "when": {"payload_bytes_min": 1_000_000}, "chain": cloud[1:]})
    rules.append({"name": "default", "chain": [{"route": "local", "timeout_ms": 40}, *cloud]})
    return {"service": "bench-vision", "rules": rules, "admission": {"rate_limit_rps": 5000}}


DISTRIBUTION = {
    "service_class": "interactive",
    "priority": {"choices": {"high": 1, "normal": 6, "low": 2}},
    "confidence": {"uniform": [0, 1]},
    "temperature_c": {"normal": {"mean": 65, "sd": 10}},
    "memory_headroom_pct": {"uniform": [0, 60]},
    "queue_depth": {"int_uniform": [0, 12]},
    "active_workers": {"int_uniform": [1, 4]},
    "rtt_ms": {"lognormal": {"p50": 40, "p95": 120}},
    "network_quality": {"choices": {"good": 8, "fair": 2, "offline": 1}},
    "payload_bytes": {"int_uniform": [1_000, 2_000_000]},
    "privacy": {"bernoulli": 0.05},
    "region": {"choices": {"eu-west": 3, "us-east": 3, "cn-north": 1}},
    "observed_rps": {"uniform": [100, 5500]},
    "load_pct": {"uniform": [20, 95]},
}


def measure(compiled, contexts, *, explain: bool, seconds: float = 2.0) -> float:
    done = 0
    started = time.perf_counter()
    while True:
        for context in contexts:
            decide(compiled, context, explain=explain)
        done += len(contexts)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def main() -> None:
    policy = twenty_rule_policy()
    problems = [
        p
        for p in validate_policy(policy, latency_slo_ms=250, service_class="interactive")
        if p.severity == "error"
    ]
    assert not problems, problems
    compiled = compile_policy(policy)
    contexts = generate_contexts(DISTRIBUTION, 10_000, seed=7)
    matched = [decide(compiled, c).rule_index for c in contexts]
    mean_rule = sum(i for i in matched if i is not None) / max(1, sum(i is not None for i in matched))
    fast = measure(compiled, contexts, explain=False)
    explained = measure(compiled, contexts, explain=True)
    result = {
        "benchmark": "decide",
        "rules": len(policy["rules"]),
        "contexts": len(contexts),
        "mean_matched_rule_index": round(mean_rule, 2),
        "decisions_per_s": round(fast),
        "decisions_per_s_explain": round(explained),
        "target_decisions_per_s": 200_000,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"decide, {result['rules']} rules (mean matched rule index {result['mean_matched_rule_index']}):")
    print(f"  explain=False: {fast:,.0f} decisions/s")
    print(f"  explain=True:  {explained:,.0f} decisions/s")
    print(f"  written to {RESULTS}")


if __name__ == "__main__":
    main()
