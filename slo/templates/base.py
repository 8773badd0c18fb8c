"""What a template is: pure data naming the metrics an inference server really exposes.

A template lists SLIs. A latency SLI names a histogram (candidates, newest name first, for projects
that renamed it); its threshold is picked at build time among the `le` values found on the source.
A ratio SLI names counters: good (or bad) and total. Every query the builder renders is a plain
selector, so the exact pull counts it minute by minute (see slo.promql).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Counter:
    """One counter selector: a metric (or several, summed through a `__name__` regex) and matchers.
    A matcher value starting with `~` is a regex matcher."""

    names: tuple[str, ...]
    matchers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LatencySli:
    key: str
    title: str
    # histogram base names (without `_bucket`), the first one found on the source is used
    histograms: tuple[str, ...]
    default_threshold_ms: float
    # label that carries the served model on this histogram (None: the project has none)
    model_label: str | None
    # milliseconds per unit of `le`: 1000 for seconds, 1 for milliseconds
    ms_per_unit: float = 1000.0
    objective: float = 99.0


@dataclass(frozen=True)
class RatioSli:
    key: str
    title: str
    total: Counter
    good: Counter | None = None
    bad: Counter | None = None
    model_label: str | None = None
    objective: float = 99.5


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    project: str
    # where the names come from (the project's own metrics documentation)
    reference: str
    slis: tuple[LatencySli | RatioSli, ...]
    # what the project exposes that has no exact per-minute count, and why it is left out
    notes: tuple[str, ...] = field(default=())
    service_class: str = "interactive"

    def latency_slis(self) -> list[LatencySli]:
        return [s for s in self.slis if isinstance(s, LatencySli)]
