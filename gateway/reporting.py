"""The gateway's reports to the control plane: per-minute telemetry, sampled request contexts and
sampled decision records, batched in the push format and pushed (kept while unreachable).

A mixin of `gateway.app.Gateway`: it works on the gateway's own state (lock, session, pending
minutes, context samples, decision reservoir) and holds no state of its own.
"""

from __future__ import annotations

import logging
import time
import zlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests

from gateway.traffic import ContextReservoir
from slo import contract as c

if TYPE_CHECKING:
    import threading

    from gateway.config import GatewayConfig

logger = logging.getLogger("gateway")

# minutes kept for telemetry push while the control plane is unreachable (3 hours)
MAX_PENDING_MINUTES = 180
# minutes of sampled request contexts per push
CONTEXT_BATCH_MINUTES = 60
# decision records kept for the push while the control plane is unreachable, at most
MAX_PENDING_DECISIONS = 5000


def aligned_delay(now: float, interval_s: float, offset_s: float) -> float:
    """Seconds from `now` to the next instant `k * interval_s + offset_s` (epoch seconds) strictly
    after it: how a whole-minute telemetry push lands right after each minute ends."""
    phase = (now - offset_s) % interval_s
    return interval_s - phase


def telemetry_offset_s(config: GatewayConfig) -> float | None:
    """When to push within each telemetry interval: None (every interval from start, as before)
    unless the interval is a whole number of minutes; then 1 s after the minute ends plus this
    gateway's share of `telemetry_spread_s`, stable per name (crc32), so a fleet spreads its pushes."""
    interval = config.telemetry_interval_s
    if interval < 60 or interval % 60:
        return None
    share = (zlib.crc32(config.name.encode()) % 1000) / 1000.0
    return 1.0 + share * config.telemetry_spread_s


class ReportingMixin:
    """Telemetry, context and decision pushes of a `Gateway`."""

    config: GatewayConfig
    session: requests.Session
    _lock: threading.Lock
    _minutes: dict[int, dict[tuple[str, tuple[tuple[str, str], ...]], float]]
    _minute_gauges: dict[int, dict[tuple[str, tuple[tuple[str, str], ...]], float]]
    _context_samples: dict[int, ContextReservoir]
    _context_minute: int | None
    _decisions: ContextReservoir
    _decisions_pending: list[dict[str, Any]]
    _last_sent_at_us: int

    def _url(self, suffix: str) -> str:
        raise NotImplementedError

    def _headers(self) -> dict[str, str]:
        raise NotImplementedError

    def telemetry_batch(self, *, now: float) -> tuple[list[int], dict[str, Any]]:
        """Completed minutes not yet acknowledged, oldest first, in the push format."""
        current = int(now // 60) * 60
        with self._lock:
            minutes = sorted(m for m in self._minutes if m < current)[:MAX_PENDING_MINUTES]
            entries = []
            for minute in minutes:
                counters = [
                    {
                        "name": name,
                        "labels": dict(labels),
                        "increase": round(value, 6)
                        if isinstance(value, float) and not value.is_integer()
                        else int(value),
                    }
                    for (name, labels), value in sorted(self._minutes[minute].items())
                ]
                gauges = [
                    {"name": name, "labels": dict(labels), "value": value}
                    for (name, labels), value in sorted(self._minute_gauges.get(minute, {}).items())
                ]
                entries.append(
                    {
                        "minute": datetime.fromtimestamp(minute, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "counters": counters,
                        "gauges": gauges,
                    }
                )
        return minutes, {
            "contract_version": c.CONTRACT_VERSION,
            "gateway": self.config.name,
            "minutes": entries,
        }

    def _sent_at(self) -> str:
        """The push's `sent_at`: the wall clock, strictly increasing within this process even if the
        clock steps back, so the control plane keeps this push over any earlier one of a minute."""
        with self._lock:
            stamp_us = max(time.time_ns() // 1000, self._last_sent_at_us + 1)
            self._last_sent_at_us = stamp_us
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=stamp_us)).isoformat()

    def push_telemetry_once(self, *, now: float | None = None) -> str:
        minutes, batch = self.telemetry_batch(now=time.time() if now is None else now)
        if not minutes:
            return "nothing"
        batch["sent_at"] = self._sent_at()
        try:
            response = self.session.post(
                self._url("telemetry/"), json=batch, headers=self._headers(), timeout=(2, 10)
            )
        except requests.RequestException as exc:
            logger.info("telemetry push failed (%s); %d minutes kept", exc.__class__.__name__, len(minutes))
            return "unreachable"
        if response.status_code in (200, 202):
            with self._lock:
                for minute in minutes:
                    self._minutes.pop(minute, None)
                    self._minute_gauges.pop(minute, None)
            return "accepted"
        logger.warning("telemetry push answered HTTP %s", response.status_code)
        return f"http_{response.status_code}"

    def context_batch(self) -> tuple[list[int], dict[str, Any]]:
        """Sampled request contexts per minute, oldest first, in the push format. The minute still
        filling is included (the control plane keeps the fuller of two samples of a minute)."""
        with self._lock:
            minutes = sorted(self._context_samples)[:CONTEXT_BATCH_MINUTES]
            entries = [
                {
                    "minute": datetime.fromtimestamp(minute, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "requests": self._context_samples[minute].seen,
                    "contexts": list(self._context_samples[minute].contexts),
                }
                for minute in minutes
            ]
        return minutes, {
            "contract_version": c.CONTRACT_VERSION,
            "gateway": self.config.name,
            "minutes": entries,
        }

    def push_contexts_once(self) -> str:
        minutes, batch = self.context_batch()
        if not minutes:
            return "nothing"
        try:
            response = self.session.post(
                self._url("contexts/"), json=batch, headers=self._headers(), timeout=(2, 10)
            )
        except requests.RequestException as exc:
            logger.info("context push failed (%s); %d minutes kept", exc.__class__.__name__, len(minutes))
            return "unreachable"
        if response.status_code in (200, 202):
            with self._lock:
                for minute in minutes:
                    if minute != self._context_minute:  # the minute in progress is sent again, fuller
                        self._context_samples.pop(minute, None)
            return "accepted"
        logger.warning("context push answered HTTP %s: %s", response.status_code, response.text[:500])
        return f"http_{response.status_code}"

    def push_decisions_once(self) -> str:
        """Close this interval's sample of decision records, log each (so a request id in this log
        can be looked up in the control plane), and push every pending record."""
        with self._lock:
            sampled = self._decisions.contexts
            self._decisions = ContextReservoir(self.config.decision_sample, self._decisions.rng)
            self._decisions_pending = (self._decisions_pending + sampled)[-MAX_PENDING_DECISIONS:]
            pending = list(self._decisions_pending)
        for record in sampled:
            logger.info(
                "decision request_id=%s rule=%s route=%s chain=%s outcome=%s latency_ms=%s revision=%s",
                record["request_id"],
                record.get("rule"),
                record["route"],
                ",".join(record["chain"]),
                record["outcome"],
                record["latency_ms"],
                record.get("revision"),
            )
        if not pending:
            return "nothing"
        batch = {"contract_version": c.CONTRACT_VERSION, "gateway": self.config.name, "records": pending}
        try:
            response = self.session.post(
                self._url("decisions/"), json=batch, headers=self._headers(), timeout=(2, 10)
            )
        except requests.RequestException as exc:
            logger.info("decision push failed (%s); %d records kept", exc.__class__.__name__, len(pending))
            return "unreachable"
        if response.status_code in (200, 202, 400):
            # a refused batch would be refused again: it is logged and dropped, not retried forever
            with self._lock:
                sent = {record["request_id"] for record in pending}
                self._decisions_pending = [r for r in self._decisions_pending if r["request_id"] not in sent]
            if response.status_code != 400:
                return "accepted"
        logger.warning("decision push answered HTTP %s: %s", response.status_code, response.text[:500])
        return f"http_{response.status_code}"
