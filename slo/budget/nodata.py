"""Why an SLO has no data: a reason `{code, message, since}` stored with its status.

The engine only sees sums; whether the minutes are missing because nothing serves the SLO, its
source is down, its latency threshold is no bucket boundary, its query matches no series, or
there simply was no traffic, is read here from the telemetry facts: feeds (`SliFeed`), sources
(their last pull error and success), gateways of the service, the bucket boundaries last
discovered on a source (`slo.telemetry.discovery`) and the contract's buckets.

An SLO gets a reason when its period has no data or no traffic, or when its shortest window is
entirely missing (a source down for minutes, while the period still has older data). A chunk costs
at most four reads (SLOs, feeds, sources, gateways) plus one cache read, only for the chunk's SLOs
without data, and two writes; nothing per SLO.

Codes: `no_source`, `source_down`, `query_error`, `threshold_not_boundary`, `no_series`,
`not_pulled_yet`, `no_traffic`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from django.apps import apps
from django.db import connection

from controlplane.dbarrays import ids_in
from slo.contract import LATENCY_HISTOGRAMS, REQUEST_DURATION
from slo.counters import from_epoch_minute
from slo.engine import BatchResult
from slo.models import Slo
from slo.models.budget import SloStatus
from slo.models.telemetry import SliFeed, TelemetrySource
from slo.spec import SloSpec
from slo.telemetry.discovery import boundary_message, cached_boundaries, contract_boundaries, is_boundary

NO_SOURCE = "no_source"
SOURCE_DOWN = "source_down"
QUERY_ERROR = "query_error"
THRESHOLD_NOT_BOUNDARY = "threshold_not_boundary"
NO_SERIES = "no_series"
NOT_PULLED_YET = "not_pulled_yet"
NO_TRAFFIC = "no_traffic"
CODES = (NO_SOURCE, SOURCE_DOWN, QUERY_ERROR, THRESHOLD_NOT_BOUNDARY, NO_SERIES, NOT_PULLED_YET, NO_TRAFFIC)

# A push feed whose newest minute is older than this is a gateway that stopped pushing.
PUSH_SILENT_MINUTES = 5


def _reason(code: str, message: str, since: datetime | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "since": since.isoformat() if since else None}


def candidates(result: BatchResult) -> tuple[list[int], list[int]]:
    """Rows needing a reason: (rows without data or traffic, rows whose recent data is missing
    while the period has some)."""
    params = result.params
    period = len(params.burn_windows_min)
    minutes = params.window_minutes
    missing = result.sums.missing_minutes
    events = result.sums.valid_events
    present_period = minutes[:, period] - missing[:, period]
    recent_gone = missing[:, 0] >= minutes[:, 0]
    no_data = (present_period <= 0) | (events[:, period] <= 0) | recent_gone
    rows = np.flatnonzero(no_data).tolist()
    return rows, np.flatnonzero(~no_data).tolist()


def _covering(
    sources: list[TelemetrySource], service: str, service_tiers: list[str], tier: str
) -> list[TelemetrySource]:
    return [
        s
        for s in sources
        if (not s.services or service in s.services)
        and (s.tier == tier or (not tier and s.tier in (service_tiers or [])))
    ]


def reasons_for(
    slo_ids: Sequence[int], specs: Sequence[SloSpec], traffic_only: Sequence[bool], now: datetime
) -> dict[int, dict[str, Any]]:
    """The reason of each SLO. `traffic_only[i]`: the period has present minutes, none with events,
    and the recent minutes are there (no traffic rather than missing telemetry)."""
    if not slo_ids:
        return {}
    now_minute = int(now.timestamp()) // 60
    info = {
        pk: (tier or "", service, tiers or [])
        for pk, tier, service, tiers in Slo.objects.filter(pk__in=ids_in(slo_ids)).values_list(
            "id", "tier", "service__name", "service__tiers"
        )
    }
    feeds: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    for slo_id, source, mode, last in (
        SliFeed.objects.filter(slo_id__in=ids_in(slo_ids))
        .exclude(mode="retired")
        .values_list("slo_id", "source", "mode", "last_minute")
    ):
        feeds[slo_id].append((source, mode, last))
    sources = list(TelemetrySource.objects.filter(enabled=True).order_by("name"))
    gateways: dict[tuple[str, str], list[str]] = defaultdict(list)
    services = {v[1] for v in info.values()}
    for name, service, tier in (
        apps.get_model("routing", "Gateway")
        .objects.filter(service__name__in=services)
        .values_list("name", "service__name", "tier")
    ):
        gateways[(service, tier)].append(name)
    histograms = {LATENCY_HISTOGRAMS[s.sli.kind] for s in specs if s.sli.kind in LATENCY_HISTOGRAMS}
    boundaries = (
        cached_boundaries([(s.pk, h) for s in sources for h in sorted(histograms)]) if histograms else {}
    )

    out: dict[int, dict[str, Any]] = {}
    for i, slo_id in enumerate(slo_ids):
        tier, service, service_tiers = info.get(slo_id, ("", "", []))
        if traffic_only[i]:
            out[slo_id] = _reason(
                NO_TRAFFIC, "telemetry is there but recorded no events over the period: no traffic"
            )
            continue
        covering = _covering(sources, service, service_tiers, tier)
        pushes = [(src, last) for src, mode, last in feeds[slo_id] if mode == "push"]
        gws = [
            g
            for (svc, t), names in gateways.items()
            if svc == service and (not tier or t == tier)
            for g in names
        ]
        out[slo_id] = _missing_reason(
            slo_id,
            specs[i],
            covering,
            pushes,
            gws,
            boundaries,
            now_minute,
            service,
            tier,
        )
    return out


def _missing_reason(
    slo_id: int,
    spec: SloSpec,
    covering: list[TelemetrySource],
    pushes: list[tuple[str, int]],
    gws: list[str],
    boundaries: dict[tuple[int, str], list[float]],
    now_minute: int,
    service: str,
    tier: str,
) -> dict[str, Any]:
    where = f"service {service} on tier {tier or 'any'}"
    histogram = LATENCY_HISTOGRAMS.get(spec.sli.kind, REQUEST_DURATION)
    threshold_ms = spec.sli.threshold_ms if spec.sli.kind in LATENCY_HISTOGRAMS else None
    if (
        threshold_ms is not None
        and (pushes or gws)
        and not covering
        and not is_boundary(threshold_ms / 1000, contract_boundaries(histogram))
    ):
        # gateways push the contract's buckets: this threshold never matches a series
        return _reason(
            THRESHOLD_NOT_BOUNDARY,
            boundary_message(threshold_ms, contract_boundaries(histogram), "the gateway contract", histogram),
        )
    if not covering and not pushes:
        if gws:
            return _reason(
                NO_SOURCE,
                f"no telemetry source serves {where}, and gateway(s) {', '.join(sorted(gws))} "
                "registered for it have not pushed telemetry",
            )
        return _reason(NO_SOURCE, f"no telemetry source serves {where} and no gateway pushes for it")
    down = [s for s in covering if s.consecutive_failures > 0]
    if down:
        s = down[0]
        since = s.last_success_at or s.created_at
        return _reason(
            SOURCE_DOWN,
            f"source {s.name} is down ({s.consecutive_failures} failed pulls): {s.last_error}",
            since,
        )
    marker = f"SLO {slo_id}:"
    for s in covering:
        if (
            s.last_error
            and marker in s.last_error
            and s.last_error_at
            and s.last_success_at
            and s.last_error_at >= s.last_success_at
        ):
            detail = next(
                (part.strip() for part in s.last_error.split("; ") if part.startswith(marker)), s.last_error
            )
            return _reason(
                QUERY_ERROR,
                f"source {s.name} refused the SLI query: {detail.removeprefix(marker).strip()}",
                s.last_error_at,
            )
    if threshold_ms is not None:
        for s in covering:
            found = boundaries.get((s.pk, histogram))
            if found and not is_boundary(threshold_ms / 1000, found):
                return _reason(
                    THRESHOLD_NOT_BOUNDARY,
                    boundary_message(threshold_ms, found, f"source {s.name}", histogram),
                )
    silent = [(src, last) for src, last in pushes if last < now_minute - PUSH_SILENT_MINUTES]
    if silent and len(silent) == len(pushes) and not covering:
        src, last = max(silent, key=lambda p: p[1])
        return _reason(
            SOURCE_DOWN,
            f"{src} has pushed nothing since {from_epoch_minute(last + 1).isoformat()}",
            from_epoch_minute(last + 1),
        )
    waiting = [s for s in covering if s.last_success_at is None]
    if waiting and len(waiting) == len(covering) and not pushes:
        return _reason(NOT_PULLED_YET, f"source {waiting[0].name} has not been pulled yet")
    names = ", ".join([s.name for s in covering] + [src for src, _ in pushes])
    hint = ""
    if threshold_ms is not None:
        hint = f" (is {threshold_ms:g} ms a bucket boundary there? see the source's discovery)"
    return _reason(NO_SERIES, f"{names} answered, but the SLI query matched no series{hint}")


def no_data_reasons_write(ids: list[int], specs: list[SloSpec], result: BatchResult, now: datetime) -> int:
    """Store the reason of every row without data and clear it on the others. Returns the query count."""
    rows, fine = candidates(result)
    params = result.params
    period = len(params.burn_windows_min)
    minutes, missing = params.window_minutes, result.sums.missing_minutes
    traffic_only = [
        bool(minutes[r, period] - missing[r, period] > 0 and missing[r, 0] < minutes[r, 0]) for r in rows
    ]
    reasons = reasons_for([ids[r] for r in rows], [specs[r] for r in rows], traffic_only, now)
    queries = 5 if rows else 0
    fine_ids = [ids[r] for r in fine]
    if fine_ids:
        SloStatus.objects.filter(slo_id__in=ids_in(fine_ids), no_data_reason__isnull=False).update(
            no_data_reason=None
        )
        queries += 1
    if not reasons:
        return queries
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE slo_slostatus s SET no_data_reason = r.doc
                FROM unnest(%s::bigint[]) WITH ORDINALITY AS v(slo_id, i)
                JOIN jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS r(doc, i) ON r.i = v.i
                WHERE s.slo_id = v.slo_id
                """,
                [list(reasons), json.dumps(list(reasons.values()))],
            )
    else:
        for slo_id, reason in reasons.items():
            SloStatus.objects.filter(slo_id=slo_id).update(no_data_reason=reason)
    return queries + 1
