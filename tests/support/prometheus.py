"""A real Prometheus for tests: deterministic counter history -> OpenMetrics -> TSDB blocks -> server.

Everything lives in a tmp dir and listens on a free 127.0.0.1 port, never 9090. History is backfilled
with `promtool tsdb create-blocks-from openmetrics`, which needs timestamps in the past and inside the
retention (we start the server with 400d). The history here ends hours before now, so blocks never
overlap the server's in-memory head.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from slo.contract import REQUEST_DURATION, REQUESTS_TOTAL
from tests.support.servers import ServerProcess, find_binary, missing_binary
from tests.support.servers import free_port as free_port  # re-exported: tests import it from here

PROMETHEUS_BIN = "/usr/bin/prometheus"
PROMTOOL_BIN = "/usr/bin/promtool"
SCRAPE_OFFSETS_S = (15, 30, 45, 60)  # aligned scrapes: the last one falls exactly on the minute's end
SHIFTED_OFFSETS_S = (7, 22, 37, 52)


def prometheus_binaries() -> tuple[str, str] | None:
    prom = find_binary("prometheus", path=PROMETHEUS_BIN)
    tool = find_binary("promtool", path=PROMTOOL_BIN)
    return (prom, tool) if prom and tool else None


def require_prometheus() -> tuple[str, str]:
    """The binaries, or fail on CI (the install script must have run) / skip on a developer machine."""
    found = prometheus_binaries()
    if found is None:
        missing_binary("prometheus/promtool not installed: run scripts/install-prometheus.sh")
    return found


# -- history ----------------------------------------------------------------------------------------


@dataclass
class SeriesHistory:
    """One counter series with known per-minute increments.

    `increments[i]` is what minute i of the history adds between the last samples of minutes i-1 and
    i; `observed[i]` says whether the series was scraped in minute i; `resets` are minutes whose
    counter restarted from 0 just before their first scrape (so their increment is the new value).
    """

    name: str
    labels: dict[str, str]
    increments: np.ndarray
    observed: np.ndarray
    resets: frozenset[int] = frozenset()
    offsets_s: tuple[int, ...] = SCRAPE_OFFSETS_S

    def samples(self, start_s: int) -> Iterator[tuple[float, int]]:
        """(timestamp_s, value) scrapes; intermediate scrapes see part of the minute's increment."""
        value = 0
        k = len(self.offsets_s)
        for i, inc in enumerate(self.increments):
            base = 0 if i in self.resets else value
            if self.observed[i]:
                for j, off in enumerate(self.offsets_s):
                    yield start_s + i * 60 + off, base + (int(inc) * (j + 1)) // k
            value = base + int(inc)

    def cumulative_at_minute_ends(self) -> np.ndarray:
        out = np.zeros(len(self.increments), dtype=np.int64)
        value = 0
        for i, inc in enumerate(self.increments):
            value = (0 if i in self.resets else value) + int(inc)
            out[i] = value
        return out


@dataclass
class History:
    start_s: int
    minutes: int
    series: list[SeriesHistory] = field(default_factory=list)

    def add(self, series: SeriesHistory) -> SeriesHistory:
        assert len(series.increments) == self.minutes
        self.series.append(series)
        return series

    def openmetrics(self) -> str:
        """OpenMetrics text; families typed `unknown` per sample name so `le` spellings stay as given."""
        by_name: dict[str, list[SeriesHistory]] = {}
        for s in self.series:
            by_name.setdefault(s.name, []).append(s)
        lines: list[str] = []
        for name, members in by_name.items():
            lines.append(f"# TYPE {name} unknown")
            for s in members:
                label_text = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                for ts, value in s.samples(self.start_s):
                    lines.append(f"{name}{{{label_text}}} {value} {ts}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"

    def write_openmetrics(self, path: Path) -> Path:
        path.write_text(self.openmetrics())
        return path


def contract_history(start_s: int, minutes: int = 240, seed: int = 7) -> History:
    """The functional test's history for service shelf-vision on the edge tier.

    - local/ok: scraped on the minute boundary (last sample exactly at the minute's end).
    - local/error: scrapes shifted by 7 s; counter reset at minute 100.
    - cache/ok: a 5-minute scrape gap at minutes 150..154.
    - private_cloud/ok: first appears at minute 60 (a new series: counted from 0).
    - local/shed: never valid for availability.
    - latency histogram (ok outcome): local spells le "0.15" and "2"; cache spells "0.150" and "2.0".
    """
    rng = np.random.default_rng(seed)
    h = History(start_s=start_s, minutes=minutes)
    all_on = np.ones(minutes, dtype=np.bool_)
    base = {"service": "shelf-vision", "tier": "edge"}

    def req(route: str, outcome: str, low: int, high: int, **kw: object) -> SeriesHistory:
        inc = rng.integers(low, high, size=minutes)
        observed = kw.pop("observed", all_on)
        return h.add(
            SeriesHistory(REQUESTS_TOTAL, {**base, "route": route, "outcome": outcome}, inc, observed, **kw)
        )

    req("local", "ok", 50, 120)
    err = rng.integers(0, 6, size=minutes)
    err[100] = 2  # small after the reset so the drop is visible
    h.add(
        SeriesHistory(
            REQUESTS_TOTAL,
            {**base, "route": "local", "outcome": "error"},
            err,
            all_on,
            resets=frozenset({100}),
            offsets_s=SHIFTED_OFFSETS_S,
        )
    )
    gap = all_on.copy()
    gap[150:155] = False
    req("cache", "ok", 20, 60, observed=gap)
    born = all_on.copy()
    born[:60] = False
    inc_born = rng.integers(5, 15, size=minutes)
    inc_born[:60] = 0
    h.add(SeriesHistory(REQUESTS_TOTAL, {**base, "route": "private_cloud", "outcome": "ok"}, inc_born, born))
    req("local", "shed", 0, 4)

    # latency histogram for ok requests on two routes, with different `le` spellings
    for route, spellings, observed in (
        ("local", {"0.1": "0.1", "0.15": "0.15", "2": "2", "+Inf": "+Inf"}, all_on),
        ("cache", {"0.1": "0.1", "0.15": "0.150", "2": "2.0", "+Inf": "+Inf"}, gap),
    ):
        total = rng.integers(40, 100, size=minutes)
        under_2 = total - rng.integers(0, 3, size=minutes)
        under_015 = under_2 - rng.integers(0, 10, size=minutes)
        under_01 = under_015 - rng.integers(0, 10, size=minutes)
        labels = {**base, "route": route, "outcome": "ok"}
        for le, inc in (("0.1", under_01), ("0.15", under_015), ("2", under_2), ("+Inf", total)):
            h.add(SeriesHistory(f"{REQUEST_DURATION}_bucket", {**labels, "le": spellings[le]}, inc, observed))
        h.add(SeriesHistory(f"{REQUEST_DURATION}_count", labels, total, observed))
    return h


def expected_sum(
    history: History, names_labels: list[tuple[str, dict[str, str]]]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-minute expected (values, present) of the sum of the chosen series, by the contract's rules.

    Known from how the history was generated, not recomputed from samples: a minute is present when
    some chosen series was scraped in it, and every chosen series that exists by then was scraped in
    it and in the minute before; except a series' first minute, counted from 0 when another chosen
    series was scraped in that minute and the one before (a witness). Minute 0 is never present.
    """
    chosen = [s for s in history.series if (s.name, s.labels) in names_labels]
    assert len(chosen) == len(names_labels), "unknown series"
    n = history.minutes
    observed = np.array([s.observed for s in chosen])
    continuing = observed[:, 1:] & observed[:, :-1]
    values = np.zeros(n, dtype=np.int64)
    present = observed.any(axis=0)
    present[0] = False
    for k, s in enumerate(chosen):
        first = int(np.argmax(s.observed))
        for i in range(max(first, 1), n):
            witness = np.delete(continuing[:, i - 1], k).any()
            if i == first and first > 0 and witness:
                values[i] += int(s.increments[i])  # born: counted from 0
            elif s.observed[i] and s.observed[i - 1]:
                values[i] += int(s.increments[i])
            else:
                present[i] = False
    return np.where(present, values, 0), present


# -- server -----------------------------------------------------------------------------------------


class PrometheusServer(ServerProcess):
    """A Prometheus process over a data dir, on 127.0.0.1:<port>; stop()/start() for outage tests."""

    name = "prometheus"

    def __init__(self, workdir: Path, datadir: Path, port: int | None = None) -> None:
        self.binary, self.promtool = require_prometheus()
        super().__init__(workdir, port)
        self.datadir = datadir
        self.config = workdir / "prometheus.yml"
        # no scrape jobs: the only data is the backfilled history
        self.config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")

    def start(self, timeout_s: float = 60) -> PrometheusServer:
        if self.running():
            return self
        self.launch(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.datadir}",
                "--storage.tsdb.retention.time=400d",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            "/-/ready",
            timeout_s,
        )
        return self


def create_blocks(promtool: str, openmetrics_path: Path, datadir: Path) -> None:
    """Backfill TSDB blocks; 24h blocks keep a month of history to a few dozen blocks."""
    datadir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=24h",
            str(openmetrics_path),
            str(datadir),
        ],
        check=True,
        capture_output=True,
    )


def start_with_history(workdir: Path, history: History) -> PrometheusServer:
    _, promtool = require_prometheus()
    datadir = workdir / "data"
    create_blocks(promtool, history.write_openmetrics(workdir / "history.om.txt"), datadir)
    return PrometheusServer(workdir, datadir).start()


def history_start_s(days_ago: int = 3) -> int:
    """A day boundary in the past (UTC), well inside retention and far from the live head."""
    return (int(time.time()) // 86400 - days_ago) * 86400


# -- fixtures ---------------------------------------------------------------------------------------


@dataclass
class LoadedPrometheus:
    server: PrometheusServer
    history: History


@pytest.fixture(scope="module")
def prometheus_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedPrometheus]:
    """A Prometheus loaded with `contract_history`; stopped at the end of the module."""
    require_prometheus()
    workdir = tmp_path_factory.mktemp("prometheus")
    history = contract_history(history_start_s())
    server = start_with_history(workdir, history)
    try:
        yield LoadedPrometheus(server, history)
    finally:
        server.stop()


@pytest.fixture
def prometheus_server(prometheus_history: LoadedPrometheus) -> Iterator[PrometheusServer]:
    """The loaded server, guaranteed running before and after the test (outage tests stop it)."""
    prometheus_history.server.start()
    yield prometheus_history.server
    prometheus_history.server.start()
