"""Request classes and LLM figures of the simulated traffic (docs/gateway.md, "Classes and LLM").

A gateway configured with class shares draws each request's class (its routing context carries
it, so a policy may route classes differently) and labels every series with `service_class`. A
gateway with an LLM behind its routes also reports, per answer, the time to the first output
token, the time per output token after the first, and the input and output tokens, under the
telemetry contract's names (slo.contract). Draws come from their own seeded RNG, so turning these
on does not change the rest of the traffic of a seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from slo import contract as c
from slo.telemetry.batch_format import le_label

# Share of an answer's duration spent before the first token (prompt processing, queueing): the
# rest streams the output tokens.
FIRST_TOKEN_SHARE = 0.3
INPUT_TOKENS = (200, 2_000)
OUTPUT_TOKENS = (20, 400)


@dataclass(frozen=True)
class LlmAnswer:
    """What one answered (or timed-out) request reports: seconds, and tokens (0 when none)."""

    ttft_s: float
    tpot_s: float | None  # None: fewer than two output tokens (or no answer)
    input_tokens: int
    output_tokens: int


class ClassDraw:
    """Draws a class per request from the configured shares (a fixed order: reproducible)."""

    def __init__(self, shares: dict[str, float], seed: int) -> None:
        self.names = sorted(shares)
        self.weights = [shares[name] for name in self.names]
        self.rng = random.Random(seed)

    def __call__(self) -> str:
        return self.rng.choices(self.names, self.weights)[0]


class LlmModel:
    """Tokens and token timings of an answer of `elapsed_ms` on a route."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def answer(self, route: str, outcome: str, elapsed_ms: float) -> LlmAnswer | None:
        if outcome not in ("ok", "timeout"):
            return None
        elapsed_s = elapsed_ms / 1000
        if outcome == "timeout":
            # no token came back in time: the first token is at least as late as the timeout
            return LlmAnswer(elapsed_s, None, self.rng.randint(*INPUT_TOKENS), 0)
        if route == "cache":
            # a cached answer is sent whole: first token at once, no generation, no tokens billed
            return LlmAnswer(elapsed_s, None, 0, 0)
        output = self.rng.randint(*OUTPUT_TOKENS)
        ttft_s = elapsed_s * FIRST_TOKEN_SHARE
        return LlmAnswer(ttft_s, (elapsed_s - ttft_s) / (output - 1), self.rng.randint(*INPUT_TOKENS), output)


Labels = tuple[tuple[str, str], ...]


def record_answer(
    counters: dict[tuple[str, Labels], float],
    base: Labels,
    route: str,
    outcome: str,
    answer: LlmAnswer,
    provider: str,
    model: str,
) -> list[tuple[str, Labels, float]]:
    """Add one answer's LLM series to a minute's counters; returns the (family, labels, value)
    observations and increments for the Prometheus registry."""
    out: list[tuple[str, Labels, float]] = []
    labels = base + (("route", route), ("outcome", outcome))
    _histogram(counters, c.TIME_TO_FIRST_TOKEN, labels, answer.ttft_s, c.TTFT_BUCKETS_S)
    out.append((c.TIME_TO_FIRST_TOKEN, labels, answer.ttft_s))
    if answer.tpot_s is not None:
        labels = base + (("route", route),)
        _histogram(counters, c.TIME_PER_OUTPUT_TOKEN, labels, answer.tpot_s, c.TPOT_BUCKETS_S)
        out.append((c.TIME_PER_OUTPUT_TOKEN, labels, answer.tpot_s))
    for direction, tokens in (("input", answer.input_tokens), ("output", answer.output_tokens)):
        if tokens:
            labels = base + (
                ("route", route),
                ("provider", provider),
                ("model", model),
                ("direction", direction),
            )
            counters[(c.TOKENS_TOTAL, labels)] += tokens
            out.append((c.TOKENS_TOTAL, labels, float(tokens)))
    return out


def _histogram(
    counters: dict[tuple[str, Labels], float],
    base_name: str,
    labels: Labels,
    value: float,
    buckets: tuple[float, ...],
) -> None:
    counters[(f"{base_name}_count", labels)] += 1
    counters[(f"{base_name}_sum", labels)] += value
    for le in (*buckets, math.inf):
        if value <= le:
            counters[(f"{base_name}_bucket", labels + (("le", le_label(float(le))),))] += 1
