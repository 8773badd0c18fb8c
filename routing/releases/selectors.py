"""Reads for releases: lists and details, the telemetry a canary analysis compares, and rollback
acknowledgement. Telemetry comes through slo's selectors (routing never reads slo's tables)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet

from controlplane.errors import NotFound
from routing.fleet import selectors as fleet_selectors
from routing.models.fleet import Gateway
from routing.models.releases import (
    GateResult,
    ModelVersion,
    Release,
    ReleaseApproval,
    ReleaseGateway,
    ReleaseRollback,
    ReleaseSettings,
    ReleaseTransition,
)
from routing.releases import machine
from routing.releases.canary import GroupStats, SloWindow, histogram_p95
from slo import contract
from slo.models import Slo
from slo.telemetry.selectors import contract_series, minute_datetime

ERROR_OUTCOMES = frozenset({"error", "timeout"})


def release_queryset() -> QuerySet[Release]:
    return Release.objects.select_related(
        "service", "routing_policy_version", "cache_config_version", "model_version"
    )


def release_detail_queryset() -> QuerySet[Release]:
    """One release with everything its detail view shows, in a fixed number of queries."""
    return release_queryset().prefetch_related(
        Prefetch("transitions", queryset=ReleaseTransition.objects.order_by("at", "id")),
        Prefetch("gate_results", queryset=GateResult.objects.order_by("at", "id")),
        Prefetch("approvals", queryset=ReleaseApproval.objects.order_by("at", "id")),
        Prefetch(
            "targets",
            queryset=ReleaseGateway.objects.select_related("gateway").order_by("wave", "gateway_id"),
        ),
        Prefetch("rollbacks", queryset=ReleaseRollback.objects.order_by("at", "id")),
    )


def release_get(*, release_id: int) -> Release:
    release = release_detail_queryset().filter(pk=release_id).first()
    if release is None:
        raise NotFound("no such release")
    return release


def resolve_targets(*, release: Release) -> list[Gateway]:
    """The selector as a concrete, ordered gateway list (order decides the waves: by region, then
    name, so the first wave is not all from one region when the fleet is big enough to choose)."""
    selector = release.target_selector or {}
    queryset = Gateway.objects.filter(service_id=release.service_id)
    if selector.get("tier"):
        queryset = queryset.filter(tier=selector["tier"])
    if selector.get("region"):
        queryset = queryset.filter(region=selector["region"])
    if selector.get("labels"):
        # containment, not a lookup built from a key (`a__regex` would run a regex)
        queryset = fleet_selectors.with_labels(queryset, selector["labels"])
    if selector.get("gateways"):
        queryset = queryset.filter(pk__in=selector["gateways"])
    gateways = list(queryset.order_by("name"))
    # Interleave regions: round-robin over regions keeps early waves representative.
    by_region: dict[str, list[Gateway]] = {}
    for gateway in gateways:
        by_region.setdefault(gateway.region, []).append(gateway)
    ordered: list[Gateway] = []
    queues = [by_region[r] for r in sorted(by_region)]
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def wave_preview(
    *, release: Release, confirmed_for: int | None = None, gateways: list[Gateway] | None = None
) -> dict[str, Any]:
    """What the release's wave plan gives on the gateways its target matches now (or `gateways`):
    per requested wave the gateways it gets and the effective share. `confirmed` says whether a
    first wave bigger than asked was accepted for this many gateways."""
    if gateways is None:
        gateways = resolve_targets(release=release)
    plan = [(w["percent"], w["bake_s"]) for w in release.wave_plan]
    sizes = machine.wave_sizes(len(gateways), plan)
    oversize = machine.first_wave_oversize(sizes)
    return {
        "gateways": len(gateways),
        "gateway_ids": [g.pk for g in gateways],
        "waves": [size.as_dict() for size in sizes],
        "first_wave_larger_than_requested": oversize is not None,
        "confirmed": oversize is not None and confirmed_for == len(gateways),
    }


def release_content_authors(*, release: Release) -> list[dict[str, Any]]:
    """Who wrote what the release ships: each document version's author and the model version's
    registrant. None of them may approve the release (four eyes across content and release)."""
    out: list[dict[str, Any]] = []
    for what, version in (
        ("routing policy", release.routing_policy_version),
        ("cache config", release.cache_config_version),
    ):
        if version is not None:
            out.append(
                {
                    "what": f"{what} v{version.version}",
                    "user_id": version.author_id,
                    "name": version.author_name,
                }
            )
    if release.model_version is not None:
        out.append(
            {
                "what": f"model {release.model_version.label}",
                "user_id": None,
                "name": release.model_version.created_by_name,
            }
        )
    return out


def content_authored_by(*, release: Release, user: Any) -> list[str]:
    """What of the release's content `user` wrote (empty when nothing)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    user_id = getattr(user, "pk", None)
    username = user.get_username()
    return [
        row["what"]
        for row in release_content_authors(release=release)
        if (row["user_id"] is not None and row["user_id"] == user_id)
        or (row["user_id"] is None and row["name"] and row["name"] == username)
    ]


def release_settings_for(*, service_id: int) -> ReleaseSettings:
    """The service's release settings, or unsaved defaults."""
    return ReleaseSettings.objects.filter(service_id=service_id).first() or ReleaseSettings(
        service_id=service_id
    )


def model_version_queryset() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("service", "rollback_target")


def approvals_count(*, release_id: int) -> int:
    return ReleaseApproval.objects.filter(release_id=release_id, decision="approve").count()


def touched_targets(*, release_id: int) -> list[ReleaseGateway]:
    """Targets the release has set a desired revision on (what a rollback must restore)."""
    return list(
        ReleaseGateway.objects.filter(release_id=release_id, release_revision__isnull=False)
        .select_related("gateway")
        .order_by("gateway_id")
    )


def wave_targets(*, release_id: int, wave: int) -> list[ReleaseGateway]:
    """The wave's gateways, less those it skipped (hot or short of memory: routing.capacity.waves)."""
    return list(
        ReleaseGateway.objects.filter(
            release_id=release_id, wave=wave, skipped_at__isnull=True
        ).select_related("gateway")
    )


def skipped_targets(*, release_id: int, before_wave: int) -> list[ReleaseGateway]:
    """Gateways earlier waves skipped and never delivered: the next wave tries them again."""
    return list(
        ReleaseGateway.objects.filter(
            release_id=release_id, wave__lt=before_wave, skipped_at__isnull=False, touched_at__isnull=True
        ).select_related("gateway")
    )


def rollback_pending_ack() -> QuerySet[ReleaseRollback]:
    return ReleaseRollback.objects.filter(acknowledged_at__isnull=True)


def gateways_running(*, revisions: dict[int, int]) -> dict[int, bool]:
    """gateway id -> whether it reports running (at least) the given revision."""
    applied = dict(Gateway.objects.filter(pk__in=list(revisions)).values_list("pk", "applied_revision"))
    return {gid: applied.get(gid) is not None and applied[gid] >= rev for gid, rev in revisions.items()}


# -- canary telemetry ----------------------------------------------------------------------------


def _sources(gateway_ids: Iterable[int]) -> list[str]:
    return [f"gateway:{int(g)}" for g in gateway_ids]


def _labels(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        key, _, value = part.partition("=")
        if key:
            out[key] = value
    return out


def slo_windows(
    *, slos: Sequence[Slo], gateway_ids: Sequence[int], first_minute: int, stop_minute: int
) -> dict[int, tuple[float, float]]:
    """slo id -> (good, valid) summed over the gateways' own push sources and minutes
    [first, stop). Only minutes a gateway reported count: a missing minute is not zero traffic."""
    from slo.models.telemetry import SliMinute  # per-source minutes: the only per-gateway SLI read

    totals: dict[int, list[float]] = {slo.pk: [0.0, 0.0] for slo in slos}
    if not gateway_ids or stop_minute <= first_minute:
        return {k: (v[0], v[1]) for k, v in totals.items()}
    rows = SliMinute.objects.filter(
        slo_id__in=list(totals),
        source__in=_sources(gateway_ids),
        minute__gte=first_minute,
        minute__lt=stop_minute,
        present=True,
    ).values_list("slo_id", "good", "valid")
    for slo_id, good, valid in rows:
        totals[slo_id][0] += min(good, valid)  # good can exceed valid after a counter reset
        totals[slo_id][1] += valid
    return {k: (v[0], v[1]) for k, v in totals.items()}


def group_stats(
    *, service: str, slos: Sequence[Slo], gateway_ids: Sequence[int], first_minute: int, stop_minute: int
) -> GroupStats:
    """Everything a canary measurement needs for one group of gateways over the same minutes."""
    windows = slo_windows(
        slos=slos, gateway_ids=gateway_ids, first_minute=first_minute, stop_minute=stop_minute
    )
    slo_rows = [SloWindow(slo.name, slo.objective / 100.0, *windows.get(slo.pk, (0.0, 0.0))) for slo in slos]
    requests = errors = 0.0
    buckets: dict[float, float] = defaultdict(float)
    if gateway_ids and stop_minute > first_minute:
        frame = contract_series(
            start=minute_datetime(first_minute),
            end=minute_datetime(stop_minute),
            services=[service],
            names=[contract.REQUESTS_TOTAL, f"{contract.REQUEST_DURATION}_bucket"],
            sources=_sources(gateway_ids),
        )
        for name, labels, value in frame[["name", "labels", "value"]].itertuples(index=False):
            parsed = _labels(labels)
            if name == contract.REQUESTS_TOTAL:
                if parsed.get("outcome") == "shed":
                    continue  # shed requests were refused on purpose, not served badly
                requests += value
                if parsed.get("outcome") in ERROR_OUTCOMES:
                    errors += value
            else:
                try:
                    le = float(parsed.get("le", "nan"))
                except ValueError:
                    continue
                buckets[le] += value
    p95_s = histogram_p95(buckets)
    return GroupStats(
        slos=slo_rows, requests=requests, errors=errors, p95_ms=None if p95_s is None else p95_s * 1000.0
    )


def baseline_gateway_ids(*, release: Release, exclude: Iterable[int]) -> list[int]:
    """The rest of the fleet: the service's gateways that this release has not touched."""
    excluded = set(exclude) | set(
        ReleaseGateway.objects.filter(release=release, release_revision__isnull=False).values_list(
            "gateway_id", flat=True
        )
    )
    return sorted(
        set(Gateway.objects.filter(service_id=release.service_id).values_list("pk", flat=True)) - excluded
    )


def minute_bounds(start: datetime, end: datetime) -> tuple[int, int]:
    """Whole epoch minutes [first, stop) inside [start, end): only complete minutes."""
    first = -(-int(start.timestamp()) // 60)  # ceil: a minute that began before `start` is not in
    stop = int(end.timestamp()) // 60
    return first, stop


# What a release's state changes mean on a time chart: it began rolling out, finished, was rolled back.
MARKER_EVENTS = {machine.START: "release", machine.COMPLETE: "release_done", machine.ROLLBACK: "rollback"}
MAX_MARKERS = 200


def release_markers(*, service: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Release starts, completions and rollbacks of one service (by name) in `[start, end)`, oldest
    first, for time charts: `{at, kind ("release" | "release_done" | "rollback"), release_id, label}`."""
    rows = (
        ReleaseTransition.objects.filter(
            release__service__name=service, event__in=list(MARKER_EVENTS), at__gte=start, at__lt=end
        )
        .order_by("-at", "-id")
        .values("at", "event", "release_id", "release__title", "reason")[:MAX_MARKERS]
    )
    out = []
    for row in reversed(list(rows)):
        kind = MARKER_EVENTS[row["event"]]
        what = {"release": "started rolling out", "release_done": "completed", "rollback": "rolled back"}[
            kind
        ]
        title = f" ({row['release__title']})" if row["release__title"] else ""
        label = f"release #{row['release_id']}{title} {what}"
        if kind == "rollback" and row["reason"]:
            label += f": {row['reason']}"
        out.append({"at": row["at"], "kind": kind, "release_id": row["release_id"], "label": label})
    return out
