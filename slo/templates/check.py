"""Check every template against its project's own metrics documentation (pure; no Django).

    python -m slo.templates.check ../shared/real-world/inference-metrics

Each metric name a template reads must appear in the project's documentation, as a whole name;
a counter ending in `_total` may be documented without it (prometheus_client adds the suffix on
output, and vLLM and LiteLLM document the registered name). Each label a template matches on must
appear there too. Prints one line per name; exits 1 when a name or label is not documented.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from slo.templates import TEMPLATES
from slo.templates.base import Counter, LatencySli, Template

# documentation of each project under the inference-metrics directory (files or directories)
DOCS = {
    "vllm": ("vllm-FACTS.md", "vllm"),
    "triton": ("triton",),
    "tgi": ("tgi",),
    "litellm": ("litellm",),
}


def _documented(text: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_:]){re.escape(name)}(?![A-Za-z0-9_:])", text) is not None


def _doc_text(root: Path, template: str) -> str:
    parts = []
    for rel in DOCS[template]:
        path = root / rel
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        parts += [
            f.read_text(encoding="utf-8", errors="replace") for f in files if f.suffix in (".md", ".txt", "")
        ]
    return "\n".join(parts)


def _names_and_labels(template: Template) -> tuple[list[str], list[str]]:
    names: list[str] = []
    labels: list[str] = []
    for sli in template.slis:
        if sli.model_label:
            labels.append(sli.model_label)
        if isinstance(sli, LatencySli):
            names += list(sli.histograms)
            continue
        for counter in (sli.good, sli.bad, sli.total):
            if isinstance(counter, Counter):
                names += list(counter.names)
                labels += [label for label, _ in counter.matchers]
    return list(dict.fromkeys(names)), list(dict.fromkeys(labels))


def check(root: Path) -> list[str]:
    """Problems found (empty: every template matches its documentation); prints each check."""
    problems = []
    for name, template in sorted(TEMPLATES.items()):
        text = _doc_text(root, name)
        if not text:
            problems.append(f"{name}: no documentation under {root}")
            continue
        metrics, labels = _names_and_labels(template)
        for metric in metrics:
            if _documented(text, metric):
                print(f"{name}: metric {metric}: documented")
            elif metric.endswith("_total") and _documented(text, metric.removesuffix("_total")):
                print(
                    f"{name}: metric {metric}: documented as {metric.removesuffix('_total')} (+_total on output)"
                )
            else:
                problems.append(f"{name}: metric {metric} is not in the project's documentation")
        for label in labels:
            if _documented(text, label):
                print(f"{name}: label {label}: documented")
            else:
                problems.append(f"{name}: label {label} is not in the project's documentation")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m slo.templates.check INFERENCE_METRICS_DIR", file=sys.stderr)
        return 2
    root = Path(argv[0])
    if not root.is_dir():
        print(f"error: {root} not found", file=sys.stderr)
        return 2
    problems = check(root)
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"{len(TEMPLATES)} templates checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
