"""Reads of request-context samples (see context_services.py): the traffic a simulation replays."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slo.models.contexts import ContextSample
from slo.telemetry.selectors import epoch_minute_floor

# A window's newest gateway-minutes, at most: 60 minutes of 50 gateways. Enough to describe the
# traffic, and a bounded read (each row is up to a few hundred contexts of JSON).
MAX_SAMPLE_ROWS = 3000


@dataclass(frozen=True)
class RecordedContexts:
    """Context samples of one service over a window, oldest first (minute, then source).

    `samples` is (requests, contexts) per gateway-minute: each context stands for
    requests / len(contexts) requests.
    """

    samples: list[tuple[int, list[dict[str, Any]]]] = field(default_factory=list)
    contexts: int = 0
    requests: int = 0
    sources: list[str] = field(default_factory=list)
    first_minute: int | None = None
    last_minute: int | None = None


def recorded_contexts(
    *, service: str, start: datetime, end: datetime, tier: str | None = None, region: str | None = None
) -> RecordedContexts:
    """The context samples gateways of `service` (optionally of one tier and/or region) pushed for
    minutes in [start, end); at most the newest MAX_SAMPLE_ROWS gateway-minutes."""
    queryset = ContextSample.objects.filter(
        service=service, minute__gte=epoch_minute_floor(start), minute__lt=epoch_minute_floor(end)
    )
    if tier:
        queryset = queryset.filter(tier=tier)
    if region:
        queryset = queryset.filter(region=region)
    rows = list(
        queryset.order_by("-minute", "source").values_list("minute", "source", "requests", "contexts")[
            :MAX_SAMPLE_ROWS
        ]
    )
    rows.sort(key=lambda row: (row[0], row[1]))
    rows = [row for row in rows if row[3]]  # a minute with traffic but no sample says nothing about contexts
    if not rows:
        return RecordedContexts()
    return RecordedContexts(
        samples=[(requests, contexts) for _minute, _source, requests, contexts in rows],
        contexts=sum(len(contexts) for *_rest, contexts in rows),
        requests=sum(requests for _minute, _source, requests, _contexts in rows),
        sources=sorted({source for _minute, source, _requests, _contexts in rows}),
        first_minute=min(minute for minute, *_rest in rows),
        last_minute=max(minute for minute, *_rest in rows),
    )
