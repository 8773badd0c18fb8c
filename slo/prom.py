"""Pull exact per-minute counter increases from a Prometheus server (an adapter: HTTP in, numpy out).

For minute M (start T) we ask Prometheus for `last_over_time(sel[59999ms])` at T + 60 s: the last raw
sample of every series in (T, T + 60], with a step of 60 s. That is a raw stored value, not a rate or an
extrapolated `increase()`; gaps stay gaps because the window is shorter than a minute (the raw
selector would instead repeat an old value for up to 5 minutes of lookback, hiding gaps; a `[1m]`
window is closed on both ends in Prometheus 2.x and would see a sample at T in two minutes). The
per-minute values go through `slo.counters`, which owns the exactness rules (resets, gaps, births).

Stateless and resumable: `pull_minutes(sel, a, c)` equals `pull_minutes(sel, a, b)` followed by
`pull_minutes(sel, b, c)`, because each call fetches its own `lookback` minutes of context on both sides.
Only minutes within `lookback` of "now" can change on a later call (a quiet series may still come back).

We use `requests` directly rather than prometheus-api-client's `custom_query_range`: that method
reports the HTTP status only inside an exception message, mounts its own urllib3 retry (no jitter,
no bound we control, retrying 500s that are query errors) and rounds start/end to seconds with
`round()`. We need the status (429/503 retry, 400/422 do not) and our own bounded, jittered backoff.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import requests

from slo.contract import SliQueries
from slo.counters import (
    DEFAULT_LOOKBACK_MINUTES,
    MINUTE_S,
    MinuteCounts,
    sum_increases,
    to_counts,
    to_epoch_minute,
)
from slo.promql import UnsupportedQuery, counter_selector

logger = logging.getLogger(__name__)

# Prometheus refuses a query_range answer with more than 11,000 points per series.
PROMETHEUS_MAX_POINTS = 11_000
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class PromPullError(Exception):
    """Base class: pulling from Prometheus failed; `reason` is safe to log and store."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PrometheusUnavailable(PromPullError):
    """Prometheus did not answer usefully after the bounded retries (down, overloaded, timing out)."""


class PrometheusQueryError(PromPullError):
    """Prometheus rejected the query (bad PromQL, too many samples, auth); retrying will not help."""


@dataclass(frozen=True)
class _Series:
    minutes: np.ndarray  # int64 epoch minutes, sorted
    values: np.ndarray  # float64


# Multi-tenant Prometheus-compatible stores: Mimir and Cortex read the tenant from this header
# (Thanos uses THANOS-TENANT by default; VictoriaMetrics cluster puts the tenant in the URL path).
TENANT_HEADER = "X-Scope-OrgID"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
# Set by the puller itself: credentials go through bearer_token/basic_auth, never as a header.
_RESERVED_HEADERS = frozenset({"authorization", "content-type", "content-length", "host", "cookie"})


def request_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Extra request headers (a tenant, a proxy's routing key), checked: a valid name, not one the
    puller sets, no line breaks in the value. Raises ValueError naming the header."""
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ValueError(f"header {name!r}: not a valid header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r}: set by the puller (credentials: bearer_token or basic_auth)")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"header {name!r}: the value must be text on one line")
        out[name] = value
    return out


class PrometheusPuller:
    """Reads counter series from one Prometheus-compatible query API: Prometheus, VictoriaMetrics,
    or a Thanos/Mimir query frontend (a tenant header in `headers`, bearer or basic auth)."""

    def __init__(
        self,
        url: str,
        *,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        verify_tls: bool | str = True,
        timeout_s: float = 30,
        max_points_per_request: int = PROMETHEUS_MAX_POINTS,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 8.0,
        lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES,
        session: requests.Session | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if bearer_token and basic_auth:
            raise ValueError("use either bearer_token or basic_auth, not both")
        if not 2 <= max_points_per_request <= PROMETHEUS_MAX_POINTS:
            raise ValueError(f"max_points_per_request must be in [2, {PROMETHEUS_MAX_POINTS}]")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_points_per_request = max_points_per_request
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.lookback_minutes = lookback_minutes
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._session = session or requests.Session()
        self._session.verify = verify_tls
        if bearer_token:
            self._session.headers["Authorization"] = f"Bearer {bearer_token}"
        if basic_auth:
            self._session.auth = basic_auth
        self._session.headers.update(request_headers(headers))

    def __repr__(self) -> str:  # never show credentials
        return f"PrometheusPuller({self.url!r})"

    # -- public API -------------------------------------------------------------------------------

    def pull_minutes(self, selector: str, start: datetime, end: datetime) -> MinuteCounts:
        """Exact per-minute increases of the sum of the counter series `selector` matches, [start, end).

        `start`/`end` are aware, minute-aligned datetimes. Minutes with no data, or with a series in a
        gap, are missing (present=False), never 0. Raises PrometheusUnavailable/PrometheusQueryError.
        """
        first, stop = to_epoch_minute(start), to_epoch_minute(end)
        if stop < first:
            raise ValueError("end is before start")
        if stop == first:
            return MinuteCounts.empty(start, 0)
        lookback = self.lookback_minutes
        # Context: `lookback` minutes + the left-edge minute before, `lookback` minutes after (only
        # those already complete: the current minute is still being written).
        now_minute = int(self._clock().timestamp()) // MINUTE_S
        fetch_first = first - lookback - 1
        known_stop = min(stop + lookback, now_minute)
        fetch_stop = max(known_stop, fetch_first + 1)
        series = self._fetch_last_values(selector, fetch_first, fetch_stop)

        n = fetch_stop - fetch_first
        values = np.zeros((len(series), n))
        present = np.zeros((len(series), n), dtype=np.bool_)
        for row, s in enumerate(series):
            idx = s.minutes - fetch_first
            values[row, idx] = s.values
            present[row, idx] = True
        inc, ok = sum_increases(
            values, present, lookback_minutes=lookback, known_minutes=known_stop - fetch_first
        )
        offset = first - fetch_first
        width = stop - first
        out_inc = np.zeros(width)
        out_ok = np.zeros(width, dtype=np.bool_)
        take = min(width, n - offset)
        if take > 0:
            out_inc[:take] = inc[offset : offset + take]
            out_ok[:take] = ok[offset : offset + take]
        return to_counts(start, out_inc, out_ok)

    def pull_sli(
        self, queries: SliQueries, start: datetime, end: datetime
    ) -> tuple[MinuteCounts, MinuteCounts]:
        """(good, valid) per-minute counts; for a bad-style SLI, good = total - bad.

        A minute is present in `good` only when every query it is derived from is present.
        """
        total = self.pull_minutes(queries.total, start, end)
        if queries.good is not None:
            good = self.pull_minutes(queries.good, start, end)
            present = good.present & total.present
            return MinuteCounts(start, np.where(present, good.values, 0), present), total
        assert queries.bad is not None
        bad = self.pull_minutes(queries.bad, start, end)
        present = bad.present & total.present
        good_values = np.where(present, total.values - bad.values, 0)
        return MinuteCounts(start, good_values, present), total

    # -- HTTP -------------------------------------------------------------------------------------

    def _fetch_last_values(self, selector: str, first: int, stop: int) -> list[_Series]:
        """Per-minute last raw sample of each series for epoch minutes [first, stop)."""
        # a range needs a plain selector, not an expression: `sum(rate(sel[5m]))` and the other counter
        # forms slo.promql understands are pulled through their inner selector (the same count, exact)
        try:
            selector = counter_selector(selector)
        except UnsupportedQuery as exc:
            raise PrometheusQueryError(f"query {selector[:200]!r} cannot be pulled exactly: {exc}") from None
        query = f"last_over_time({selector}[59999ms])"
        chunks: dict[tuple[tuple[str, str], ...], list[tuple[np.ndarray, np.ndarray]]] = {}
        chunk_start = first
        while chunk_start < stop:
            # points per series = evaluation steps in the request, each minute evaluated at its end
            chunk_stop = min(chunk_start + self.max_points_per_request, stop)
            result = self._query_range(query, (chunk_start + 1) * MINUTE_S, chunk_stop * MINUTE_S)
            for item in result:
                key = tuple(sorted(item.get("metric", {}).items()))
                raw = item.get("values", [])
                if not raw:
                    continue
                ts = np.fromiter((p[0] for p in raw), dtype=np.float64, count=len(raw))
                vals = np.fromiter((float(p[1]) for p in raw), dtype=np.float64, count=len(raw))
                minutes = np.rint(ts).astype(np.int64) // MINUTE_S - 1
                chunks.setdefault(key, []).append((minutes, vals))
            chunk_start = chunk_stop
        out = []
        for parts in chunks.values():
            minutes = np.concatenate([p[0] for p in parts])
            vals = np.concatenate([p[1] for p in parts])
            finite = np.isfinite(vals)
            out.append(_Series(minutes[finite], vals[finite]))
        return out

    def _query_range(self, query: str, start_s: int, end_s: int) -> list[dict[str, Any]]:
        params = {"query": query, "start": str(start_s), "end": str(end_s), "step": str(MINUTE_S)}
        # the server-side timeout stops abandoned work when our client gives up
        params["timeout"] = f"{max(1, int(self.timeout_s))}s"
        last_reason = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                # full jitter: spreads retries of many workers hitting one recovering Prometheus
                delay = random.uniform(0, min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1)))
                self._sleep(delay)
            try:
                response = self._session.post(
                    f"{self.url}/api/v1/query_range", data=params, timeout=self.timeout_s
                )
            except requests.Timeout:
                last_reason = f"timeout after {self.timeout_s}s"
            except requests.ConnectionError as exc:
                last_reason = f"connection failed: {type(exc).__name__}"
            else:
                if response.status_code == 200:
                    return self._parse(response)
                if response.status_code in RETRY_STATUSES:
                    last_reason = f"HTTP {response.status_code}"
                else:
                    raise PrometheusQueryError(f"HTTP {response.status_code}: {_error_text(response)}")
            logger.warning(
                "prometheus query_range failed, attempt %d/%d: %s (url=%s)",
                attempt + 1,
                self.max_retries + 1,
                last_reason,
                self.url,
            )
        raise PrometheusUnavailable(f"{last_reason} after {self.max_retries + 1} attempts ({self.url})")

    @staticmethod
    def _parse(response: requests.Response) -> list[dict[str, Any]]:
        try:
            body = response.json()
        except ValueError as exc:
            raise PrometheusQueryError("answer is not JSON") from exc
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{body.get('errorType', 'error')}: {body.get('error', '')}"[:500])
        data = body.get("data", {})
        if data.get("resultType") != "matrix":
            raise PrometheusQueryError(f"expected a matrix, got {data.get('resultType')!r}")
        return list(data.get("result", []))


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('errorType', '')}: {body.get('error', '')}"[:500]
    except ValueError:
        return response.text[:200]
