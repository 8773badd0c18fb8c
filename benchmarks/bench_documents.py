"""Benchmark: the work behind the routing-document endpoints, without HTTP or the database.

Run: `.venv/bin/python benchmarks/bench_documents.py [--contexts 5000] [--repeat 5]`

Timed: validating a default policy against a service's SLOs (`policy_problems`, what every write
and dry run does), YAML parsing of that document with the alias-free loader, one explain
(`decide(..., explain=True)` on a compiled policy), and a simulate call (two versions, generated
contexts, assumed route figures) at the size the API accepts by default (5,000) and at its maximum
(50,000). Figures are medians; the machine is shared (2 cores, other engineers' tests running), so
treat them as pessimistic.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from routing.documents.validation import LatencySlo, build_context, policy_problems  # noqa: E402
from routing.documents.yamlio import load_yaml  # noqa: E402
from routing.policy import compile_policy, decide, default_policy, generate_contexts, simulate  # noqa: E402

TRAFFIC = {
    "confidence": {"uniform": [0.3, 1.0]},
    "queue_depth": {"int_uniform": [0, 6]},
    "active_workers": 2,
    "temperature_c": {"normal": {"mean": 65, "sd": 8}},
    "network_quality": {"choices": {"good": 0.9, "fair": 0.08, "offline": 0.02}},
    "privacy": {"bernoulli": 0.1},
    "service_class": "interactive",
}


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contexts", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    setup_django()
    from routing.documents.simulation import ASSUMED_ROUTE_STATS

    policy = default_policy("shelf-vision", "interactive", 150)
    escalating = json.loads(json.dumps(policy))
    escalating["rules"][-1]["chain"] = [
        {"route": "public_cloud", "timeout_ms": 100},
        {"route": "local", "timeout_ms": 40},
    ]
    context = build_context(
        service="shelf-vision",
        service_class="interactive",
        tiers=["edge", "private_cloud", "public_cloud"],
        multi_tenant=False,
        latency_slos=[
            LatencySlo("edge-latency", "edge", 150, 99.0),
            LatencySlo("cloud-latency", "public_cloud", 400, 99.0),
        ],
    )
    text = yaml.safe_dump(policy)
    compiled_a = compile_policy(policy, service_class="interactive")
    compiled_b = compile_policy(escalating, service_class="interactive")
    one = {"confidence": 0.41, "queue_depth": 9, "active_workers": 2, "temperature_c": 71}
    results = {
        "validate_policy_ms": _median_ms(lambda: policy_problems(policy, context), args.repeat * 10),
        "yaml_load_ms": _median_ms(lambda: load_yaml(text), args.repeat * 10),
        "explain_us": _median_ms(
            lambda: [decide(compiled_a, one, explain=True) for _ in range(1000)], args.repeat
        ),
    }
    for n in (args.contexts, 50_000):
        contexts = generate_contexts(TRAFFIC, n, seed=1)
        results[f"simulate_{n}_ms"] = _median_ms(
            lambda contexts=contexts: simulate(
                compiled_a,
                compiled_b,
                contexts,
                ASSUMED_ROUTE_STATS,
                latency_threshold_ms=150,
                objective=99.0,
                seed=1,
            ),
            max(1, args.repeat // (5 if n > 10_000 else 1)),
        )
        results[f"generate_{n}_ms"] = _median_ms(lambda n=n: generate_contexts(TRAFFIC, n, seed=1), 1)
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": results,
        "note": "medians on a shared 2-core machine; explain_us is per 1,000 explains in ms = us each",
    }
    for name, value in results.items():
        print(f"{name:28s} {value:10.2f}")
    out = Path(__file__).resolve().parent / "results" / "documents.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


def setup_django() -> None:
    """The glue modules import Django models; configure settings without touching the database."""
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    django.setup()


if __name__ == "__main__":
    main()
