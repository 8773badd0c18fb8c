"""Extension points of the reports: other apps contribute data without slo importing them.

`slo` never imports `routing`, yet a report shows releases and names gateways. Routing registers
providers from its `AppConfig.ready()` (see `routing/reports.py`):

- a *section* provider `fn(*, services: list[str], start: datetime, end: datetime) -> Any` whose
  JSON-ready result is stored under `sections[name]` of the report's numbers, per service;
- a *source resolver* `fn(sources: list[str]) -> {source: {"name": str, "region": str}}` that
  names the telemetry sources (`gateway:<id>`) the top-consumer tables group by.

Without a provider the report says the section is unavailable; it never invents an empty one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

SectionProvider = Callable[..., Any]
SourceResolver = Callable[[list[str]], dict[str, dict[str, str]]]

_sections: dict[str, SectionProvider] = {}
_resolvers: list[SourceResolver] = []


def register_section(name: str, fn: SectionProvider) -> None:
    """Register (or replace: `ready()` may run twice in tests) the provider of section `name`."""
    _sections[name] = fn


def register_source_resolver(fn: SourceResolver) -> None:
    """Register a resolver of telemetry source names and regions (idempotent)."""
    if fn not in _resolvers:
        _resolvers.append(fn)


def registered_sections() -> dict[str, SectionProvider]:
    return dict(_sections)


def section_data(name: str, *, services: list[str], start: datetime, end: datetime) -> dict[str, Any]:
    """`{"available": True, "data": ...}` from the provider, or `{"available": False, "reason"}`."""
    fn = _sections.get(name)
    if fn is None:
        return {"available": False, "reason": f"no provider registered for {name!r}"}
    return {"available": True, "data": fn(services=services, start=start, end=end)}


def resolve_sources(sources: list[str]) -> dict[str, dict[str, str]]:
    """Names and regions of telemetry sources; sources nobody knows are left out."""
    out: dict[str, dict[str, str]] = {}
    for fn in _resolvers:
        out.update(fn(sources))
    return out
