"""Evaluating SLOs: buckets -> engine -> `SloStatus`, history points and alert transitions.

One chunk of SLOs is one transaction. The claim is a conditional update of the chunk's status rows
(`evaluated_at < now`), so two workers given the same chunk and instant never both evaluate it,
a replay for the same `now` does nothing, and an older `now` never overwrites a newer status.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL

from controlplane.dbarrays import ids_in
from controlplane.lib.pgarrays import bytea_array, float_array, int_array
from slo.budget import alerts
from slo.budget.buckets import MinuteCount, floor_minute, record_minutes
from slo.budget.nodata import no_data_reasons_write
from slo.budget.window_state import window_sums_incremental
from slo.engine import ALERT_STATES, DATA_QUALITY, TIER_STATUS, BatchResult, batch_params, evaluate_batch
from slo.engine.alerts import alert_tiers_for
from slo.engine.evaluate import TIER_ABSENT, TIER_FIRING, TIER_NOT_FIRING
from slo.models import Slo
from slo.models.budget import SloStatus
from slo.spec import SloSpec

logger = logging.getLogger(__name__)

# A history point every 5 minutes keeps charts smooth at 288 points a day per SLO.
HISTORY_STEP_MIN = 5
CHUNK_SIZE = 2000


@dataclass
class EvaluationReport:
    """What one evaluation did; the benchmark and the task log print it."""

    now: datetime
    claimed: int = 0
    evaluated: int = 0
    skipped_invalid: int = 0
    transitions: int = 0
    notifications: int = 0
    queries: int = 0
    rebuilt: int = 0  # SLOs whose window state was rebuilt from the buckets
    written: int = 0  # status rows whose figures were rewritten (the others only moved evaluated_at)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, other: EvaluationReport) -> None:
        self.claimed += other.claimed
        self.evaluated += other.evaluated
        self.skipped_invalid += other.skipped_invalid
        self.transitions += other.transitions
        self.notifications += other.notifications
        self.queries += other.queries
        self.rebuilt += other.rebuilt
        self.written += other.written
        for key, value in other.seconds.items():
            self.seconds[key] = self.seconds.get(key, 0.0) + value


def budget_minutes_record(*, rows: Iterable[MinuteCount], now: datetime | None = None) -> int:
    """Store raw per-minute SLI counts as budget buckets (replacing re-sent minutes) and refresh the
    hour and day rollups they touch. Called by the telemetry feed; idempotent. With `now`, minutes
    older than the minute retention before it are ignored (see `buckets.record_minutes`)."""
    rows = list(rows)
    slo_ids = {row.slo_id for row in rows}
    specs = {
        slo_id: SloSpec.model_validate(spec)
        for slo_id, spec in Slo.objects.filter(pk__in=slo_ids).values_list("id", "spec")
    }
    with transaction.atomic():
        return record_minutes(rows, specs, now=now)


def active_slo_ids() -> list[int]:
    return list(Slo.objects.filter(archived_at__isnull=True).order_by("pk").values_list("pk", flat=True))


def slo_evaluate_all(*, now: datetime, chunk_size: int = CHUNK_SIZE) -> EvaluationReport:
    """Evaluate every active SLO at `now`, chunk by chunk in this process (the task fans the same
    chunks out to workers instead)."""
    report = EvaluationReport(now=floor_minute(now))
    ids = active_slo_ids()
    report.queries += 1
    for start in range(0, len(ids), chunk_size):
        report.add(slo_evaluate(slo_ids=ids[start : start + chunk_size], now=now))
    return report


def slo_evaluate(*, slo_ids: Sequence[int], now: datetime) -> EvaluationReport:
    """Evaluate these SLOs at `now` (aware; floored to the minute). Idempotent per `now`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = floor_minute(now)
    report = EvaluationReport(now=now)
    if not slo_ids:
        return report
    clock = time.perf_counter()
    # Status rows exist before they can be claimed; a new SLO gets one here.
    have = set(SloStatus.objects.filter(slo_id__in=ids_in(slo_ids)).values_list("slo_id", flat=True))
    missing = [i for i in slo_ids if i not in have]
    if missing:
        SloStatus.objects.bulk_create([SloStatus(slo_id=i) for i in missing], ignore_conflicts=True)
    report.queries += 2
    with transaction.atomic():
        previous: dict[int, int | None] = {}
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # JIT compilation costs more than it saves on these short aggregate queries.
                cursor.execute("SET LOCAL jit = off")
                # The claim locks the due rows (a second evaluation of the same instant waits, then
                # finds them evaluated); `_write_statuses` moves `evaluated_at` in the same transaction.
                cursor.execute(
                    """
                    SELECT slo_id, fingerprint FROM slo_slostatus
                    WHERE slo_id = ANY(%s::bigint[]) AND (evaluated_at IS NULL OR evaluated_at < %s)
                    ORDER BY slo_id FOR UPDATE
                    """,
                    [int_array(slo_ids), now],
                )
                previous = dict(cursor.fetchall())
                claimed = sorted(previous)
        else:
            # SQLite (embedded mode) has one writer at a time (IMMEDIATE transactions), so a read
            # then an update inside this transaction is the same claim.
            due = SloStatus.objects.filter(slo_id__in=slo_ids).filter(
                Q(evaluated_at__isnull=True) | Q(evaluated_at__lt=now)
            )
            claimed = sorted(due.values_list("slo_id", flat=True))
            SloStatus.objects.filter(slo_id__in=claimed).update(evaluated_at=now)
        report.queries += 1
        report.claimed = len(claimed)
        if not claimed:
            return report  # another worker (or an earlier run for this instant) got there first
        rows, docs = active_specs(claimed)
        report.queries += 2 if docs else 1
        ids, specs, versions, services = [], [], [], []
        for slo_id, version, digest, service_id, service_name in rows:
            try:
                specs.append(parsed_spec(slo_id, version, docs.get(slo_id), digest=digest))
            except ValueError:
                logger.error("SLO %s has an invalid stored spec; not evaluated", slo_id)
                report.skipped_invalid += 1
                continue
            ids.append(slo_id)
            versions.append(version)
            services.append((service_id, service_name))
        skipped = sorted(set(claimed) - set(ids))
        if skipped and connection.vendor == "postgresql":
            # Claimed rows that are not evaluated (archived meanwhile, invalid spec) are done too.
            SloStatus.objects.filter(slo_id__in=skipped).update(evaluated_at=now)
        report.seconds["load"] = time.perf_counter() - clock
        if not ids:
            return report
        clock = time.perf_counter()
        params = batch_params(specs, now=now, tiers=[spec_tiers(spec) for spec in specs])
        sums, queries, rebuilt = window_sums_incremental(ids, params, now)
        report.queries += queries
        report.rebuilt += rebuilt
        report.seconds["read"] = time.perf_counter() - clock
        clock = time.perf_counter()
        result = evaluate_batch(sums, params)
        report.seconds["engine"] = time.perf_counter() - clock
        clock = time.perf_counter()
        queries, report.written = _write_statuses(ids, versions, result, now, previous)
        report.queries += queries
        report.queries += no_data_reasons_write(ids, specs, result, now)
        report.evaluated = len(ids)
        report.seconds["write"] = time.perf_counter() - clock
        clock = time.perf_counter()
        transitions, notifications, queries = alerts.burn_rate_transitions(
            slo_ids=ids, services=services, result=result, now=now
        )
        report.transitions, report.notifications = transitions, notifications
        report.queries += queries
        report.seconds["alerts"] = time.perf_counter() - clock
    return report


_SPECS: dict[tuple[int, int], tuple[dict[str, Any], SloSpec]] = {}
_TIERS: dict[int, tuple[SloSpec, list[Any]]] = {}


def spec_tiers(spec: SloSpec) -> list[Any]:
    """`alert_tiers_for(spec)`, cached while the parsed spec is (the same object every minute)."""
    cached = _TIERS.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    if len(_TIERS) > 200_000:
        _TIERS.clear()
    tiers = list(alert_tiers_for(spec))
    _TIERS[id(spec)] = (spec, tiers)  # holding the spec keeps its id from being reused
    return tiers


def parsed_spec(
    slo_id: int, version: int, doc: dict[str, Any] | None, *, digest: str | None = None
) -> SloSpec:
    """Parsed specs per (SLO, version): a worker evaluates the same SLOs every minute. The stored
    document is compared too (cheap next to validation), or its `digest` (md5 of its text in
    PostgreSQL, so a minute's specs are not decoded from JSON at all): an id can be reused (SQLite)
    or a database restored, and a stale spec must never be evaluated. `doc` may be None only when
    the digest matches the cache (`active_specs` fetches the others)."""
    key = (slo_id, version)
    if digest is not None:
        by_digest = _DIGESTS.get(key)
        if by_digest is not None and by_digest[0] == digest:
            return by_digest[1]
    cached = _SPECS.get(key)
    if doc is None:
        raise ValueError(f"SLO {slo_id}: spec document not loaded")
    if cached is not None and cached[0] == doc:
        spec = cached[1]
    else:
        if len(_SPECS) > 200_000:
            _SPECS.clear()
            _DIGESTS.clear()
        spec = SloSpec.model_validate(doc)
        _SPECS[key] = (doc, spec)
    if digest is not None:
        _DIGESTS[key] = (digest, spec)
    return spec


_DIGESTS: dict[tuple[int, int], tuple[str, SloSpec]] = {}


def active_specs(slo_ids: Sequence[int]) -> tuple[list[tuple[Any, ...]], dict[int, dict[str, Any]]]:
    """`(id, version, digest, service id, service name)` of the active SLOs among `slo_ids`, and the
    spec documents of those the parsed-spec cache does not hold (all of them on SQLite, where the
    digest is None)."""
    active = Slo.objects.filter(pk__in=ids_in(slo_ids), archived_at__isnull=True)
    if connection.vendor != "postgresql":
        rows = list(active.values_list("id", "version", "spec", "service_id", "service__name"))
        return [(r[0], r[1], None, r[3], r[4]) for r in rows], {r[0]: r[2] for r in rows}
    rows = list(
        active.annotate(digest=RawSQL("md5(slo_slo.spec::text)", [])).values_list(
            "id", "version", "digest", "service_id", "service__name"
        )
    )
    missing = [r[0] for r in rows if (_DIGESTS.get((r[0], r[1])) or (None,))[0] != r[2]]
    docs = dict(Slo.objects.filter(pk__in=ids_in(missing)).values_list("id", "spec")) if missing else {}
    return rows, docs


def _num(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


# A status row's figures are rewritten when what a reader sees changes materially (its fingerprint:
# states, codes, SLI and remaining budget to 1e-4, burn rates to 0.01, budget totals to 3 significant
# digits) and at least every REFRESH_EVERY_MIN minutes (its id picks the minute); otherwise only its
# `evaluated_at` moves. Shown figures are thus at most that many minutes old and within those
# tolerances of the newest evaluation (the stale threshold is 5 intervals).
REFRESH_EVERY_MIN = 3


def _round_sig(values: np.ndarray, digits: int) -> np.ndarray:
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-1.0, posinf=-2.0, neginf=-3.0)
    scale = np.power(10.0, np.floor(np.log10(np.where(values == 0, 1.0, np.abs(values)))) - digits + 1)
    return np.round(values / scale) * scale


def _fingerprints(
    result: BatchResult, versions: list[int], tiers: np.ndarray, alert_state: list[str], basis: list[str]
) -> list[int]:
    period = len(result.params.burn_windows_min)
    figures = np.column_stack(
        [
            np.round(np.nan_to_num(result.sli[:, period], nan=-1.0), 4),
            np.round(
                np.nan_to_num(result.error_budget_remaining_ratio, nan=-9.0, posinf=9.0, neginf=-9.0), 4
            ),
            np.round(np.nan_to_num(result.burn_rate, nan=-1.0, posinf=1e300), 2),
            _round_sig(result.error_budget_total, 3),
            _round_sig(result.bad[:, period], 3),
            result.data_quality.astype(np.float64),
            tiers.astype(np.float64),
            np.asarray(versions, dtype=np.float64),
        ]
    )
    out = []
    for row, values in enumerate(figures):
        digest = hashlib.blake2b(values.tobytes(), digest_size=8)
        digest.update(f"{alert_state[row]}|{basis[row]}".encode())
        out.append(int.from_bytes(digest.digest(), "big", signed=True))
    return out


def _write_statuses(
    ids: list[int], versions: list[int], result: BatchResult, now: datetime, previous: dict[int, int | None]
) -> tuple[int, int]:
    """Rewrite the figures of rows that changed materially or are due for a refresh, move
    `evaluated_at` on the others, and add history points. Returns (queries, rows rewritten)."""
    params = result.params
    n_burn = len(params.burn_windows_min)
    sums = result.sums
    burn = np.where(np.isfinite(result.burn_rate), result.burn_rate, np.nan)
    one_hour_col = params.burn_windows_min.index(60)
    n = len(ids)
    # (n, columns, 7): minutes, good, valid, events, missing, data-quality code, burn rate (NaN
    # for the period: it is derived on read).
    table = np.stack(
        [
            params.window_minutes.astype(np.float64),
            sums.good,
            sums.valid,
            sums.valid_events,
            sums.missing_minutes.astype(np.float64),
            result.data_quality.astype(np.float64),
            np.concatenate([burn[:, :n_burn], np.full((n, 1), np.nan)], axis=1),
        ],
        axis=2,
    )
    key = ",".join(str(m) for m in params.burn_windows_min)
    tiers = np.where(result.tier_status == TIER_ABSENT, -1, result.tier_status).astype(np.int8)
    period_col = n_burn
    sli = [_num(v) for v in result.sli[:, period_col]]
    dq = [DATA_QUALITY[c] for c in result.data_quality[:, period_col]]
    remaining = [_num(v) for v in result.error_budget_remaining_ratio]
    alert_state = [ALERT_STATES[c] for c in result.alert_state]
    basis = [_tte_basis(result, row) for row in range(n)]
    bounds = params.period_bounds
    fingerprints = _fingerprints(result, versions, tiers, alert_state, basis)
    minute = int(now.timestamp() // 60)
    rows = [
        r
        for r in range(n)
        if previous.get(ids[r]) != fingerprints[r] or (ids[r] + minute) % REFRESH_EVERY_MIN == 0
    ]
    if connection.vendor != "postgresql":
        rows = list(range(n))
    window_data = [table[r].tobytes() for r in rows]
    tier_codes = [tiers[r][tiers[r] >= 0].tobytes() for r in rows]
    if connection.vendor != "postgresql":
        return _write_portable(
            ids,
            versions,
            sli,
            dq,
            result,
            remaining,
            key,
            window_data,
            tier_codes,
            fingerprints,
            alert_state,
            basis,
            bounds,
            burn[:, one_hour_col],
            now,
        ), n

    def pick(values: list) -> list:  # noqa: ANN001 - any column
        return [values[r] for r in rows]

    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE slo_slostatus s SET
              evaluated_at = %s, slo_version = v.version, sli = v.sli, data_quality = v.dq,
              error_budget_total = v.total, error_budget_consumed = v.consumed,
              error_budget_remaining = v.remaining, window_key = %s, window_data = v.wdata,
              tier_codes = v.tiers, alert_state = v.alert_state, time_to_exhaustion_s = v.tte,
              time_to_exhaustion_basis = v.basis, period_start = v.pstart, period_end = v.pend,
              fingerprint = v.fp
            FROM unnest(
              %s::bigint[], %s::int[], %s::float8[], %s::text[], %s::float8[], %s::float8[], %s::float8[],
              %s::bytea[], %s::bytea[], %s::text[], %s::float8[], %s::text[], %s::timestamptz[],
              %s::timestamptz[], %s::bigint[]
            ) AS v(slo_id, version, sli, dq, total, consumed, remaining, wdata, tiers, alert_state,
                   tte, basis, pstart, pend, fp)
            WHERE s.slo_id = v.slo_id
            """,
            [
                now,
                key,
                int_array(pick(ids)),
                int_array(pick(versions)),
                float_array(pick(sli)),
                pick(dq),
                float_array(pick([_num(v) for v in result.error_budget_total])),
                float_array(pick([_num(v) for v in result.bad[:, period_col]])),
                float_array(pick(remaining)),
                bytea_array(window_data),
                bytea_array(tier_codes),
                pick(alert_state),
                float_array(pick([_num(v) for v in result.time_to_exhaustion_s])),
                pick(basis),
                pick([b[0] if b else None for b in bounds]),
                pick([b[1] if b else None for b in bounds]),
                int_array(pick(fingerprints)),
            ],
        )
        written = set(rows)
        unchanged = [ids[r] for r in range(n) if r not in written]
        queries = 1
        if unchanged:
            cursor.execute(
                "UPDATE slo_slostatus SET evaluated_at = %s WHERE slo_id = ANY(%s::bigint[])",
                [now, int_array(unchanged)],
            )
            queries += 1
        if now.minute % HISTORY_STEP_MIN == 0:
            cursor.execute(
                """
                INSERT INTO slo_slostatuspoint (slo_id, at, sli, burn_rate_1h, error_budget_remaining,
                                                alert_state, data_quality)
                SELECT v.slo_id, %s, v.sli, v.burn, v.remaining, v.alert_state, v.dq
                FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::float8[], %s::text[], %s::text[])
                  AS v(slo_id, sli, burn, remaining, alert_state, dq)
                ON CONFLICT (slo_id, at) DO NOTHING
                """,
                [
                    now,
                    int_array(ids),
                    float_array(sli),
                    float_array(burn[:, one_hour_col].tolist()),
                    float_array(remaining),
                    alert_state,
                    dq,
                ],
            )
            queries += 1
    return queries, len(rows)


def _write_portable(
    ids,
    versions,
    sli,
    dq,
    result,
    remaining,
    key,
    window_data,
    tier_codes,
    fingerprints,
    alert_state,
    basis,
    bounds,
    burn_1h,
    now,  # noqa: ANN001
) -> int:
    """`_write_statuses` through the ORM (embedded SQLite mode): every row."""
    from slo.models.budget import SloStatusPoint

    rows = []
    for i, slo_id in enumerate(ids):
        rows.append(
            SloStatus(
                slo_id=slo_id,
                slo_version=versions[i],
                sli=sli[i],
                data_quality=dq[i],
                error_budget_total=_num(result.error_budget_total[i]),
                error_budget_consumed=_num(result.bad[i, -1]),
                error_budget_remaining=remaining[i],
                window_key=key,
                window_data=window_data[i],
                tier_codes=tier_codes[i],
                fingerprint=fingerprints[i],
                alert_state=alert_state[i],
                time_to_exhaustion_s=_num(result.time_to_exhaustion_s[i]),
                time_to_exhaustion_basis=basis[i],
                period_start=bounds[i][0] if bounds[i] else None,
                period_end=bounds[i][1] if bounds[i] else None,
            )
        )
    SloStatus.objects.bulk_update(
        rows,
        [
            "slo_version",
            "sli",
            "data_quality",
            "error_budget_total",
            "error_budget_consumed",
            "error_budget_remaining",
            "window_key",
            "window_data",
            "tier_codes",
            "fingerprint",
            "alert_state",
            "time_to_exhaustion_s",
            "time_to_exhaustion_basis",
            "period_start",
            "period_end",
        ],
    )
    if now.minute % HISTORY_STEP_MIN == 0:
        SloStatusPoint.objects.bulk_create(
            [
                SloStatusPoint(
                    slo_id=slo_id,
                    at=now,
                    sli=sli[i],
                    burn_rate_1h=_num(burn_1h[i]),
                    error_budget_remaining=remaining[i],
                    alert_state=alert_state[i],
                    data_quality=dq[i],
                )
                for i, slo_id in enumerate(ids)
            ],
            ignore_conflicts=True,
        )
    return 2


def _tiers(result: BatchResult, row: int) -> list[dict[str, Any]]:
    params = result.params
    names = params.window_names
    out = []
    for j in range(params.tier_threshold.shape[1]):
        status = int(result.tier_status[row, j])
        if status == TIER_ABSENT:
            continue
        long_col, short_col = int(params.tier_long_col[row, j]), int(params.tier_short_col[row, j])
        out.append(
            {
                "severity": "page" if params.tier_page[row, j] else "ticket",
                "budget_percent": _num(params.tier_budget_percent[row, j]),
                "long_window": names[long_col],
                "short_window": names[short_col],
                "burn_rate_threshold": _num(params.tier_threshold[row, j]),
                "long_burn_rate": _num(result.tier_long_burn[row, j]),
                "short_burn_rate": _num(result.tier_short_burn[row, j]),
                "long_data_quality": DATA_QUALITY[result.data_quality[row, long_col]],
                "short_data_quality": DATA_QUALITY[result.data_quality[row, short_col]],
                "status": TIER_STATUS[status],
            }
        )
    return out


def _tte_basis(result: BatchResult, row: int) -> str:
    remaining = float(result.error_budget_remaining_ratio[row])
    current = float(result.burn_rate[row, result.params.burn_windows_min.index(60)])
    if math.isnan(remaining):
        return "no_data"
    if remaining <= 0:
        return "exhausted"
    if math.isnan(current):
        return "no_data"
    return "not_burning" if current == 0 else "projected"


def severity_verdicts(result: BatchResult, row: int) -> dict[str, bool | None]:
    """Per severity: True (a tier fires), False (every tier decided not firing), None (unknown)."""
    params = result.params
    out: dict[str, bool | None] = {}
    for severity, is_page in (("page", True), ("ticket", False)):
        mask = params.tier_page[row] == is_page
        status = result.tier_status[row][mask]
        status = status[status != TIER_ABSENT]
        if status.size == 0:
            continue
        if (status == TIER_FIRING).any():
            out[severity] = True
        elif (status == TIER_NOT_FIRING).all():
            out[severity] = False
        else:
            out[severity] = None
    return out


def history_prune(*, now: datetime, keep_days: int = 8, keep_hourly_days: int = 400) -> int:
    """Thin the status history: 5-minute points for `keep_days`, hourly points for `keep_hourly_days`."""
    from slo.models.budget import SloStatusPoint

    recent_cut = now.astimezone(UTC) - timedelta(days=keep_days)
    old_cut = now.astimezone(UTC) - timedelta(days=keep_hourly_days)
    deleted, _ = SloStatusPoint.objects.filter(at__lt=old_cut).delete()
    # Points are minute-aligned: the ones not on the hour are the 5-minute ones.
    thinned, _ = SloStatusPoint.objects.filter(at__lt=recent_cut).exclude(at__minute=0).delete()
    return deleted + thinned
