"""LLM SLIs (time to first token, time per output token) and class-scoped SLOs on the telemetry
contract, through both paths: pushed per-minute batches and a real Prometheus pulled exactly.

The history is written here series by series with known per-minute increments; the expected good
and valid counts are sums over hand-picked series, not a re-run of the derivation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controlplane.errors import ValidationFailed
from slo.contract import REQUESTS_TOTAL, TIME_PER_OUTPUT_TOKEN, TIME_TO_FIRST_TOKEN, TOKENS_TOTAL
from slo.counters import from_epoch_minute
from slo.telemetry.ingest import telemetry_batch_ingest
from slo.telemetry.pull import telemetry_source_pull
from slo.telemetry.selectors import sli_minutes
from slo.telemetry.sources import telemetry_source_create
from tests.slo.telemetry.conftest import NOW, at, iso
from tests.support import prometheus as support
from tests.support.prometheus import History, SeriesHistory, expected_sum

MINUTES = 60
BASE = {"service": "shelf-vision", "tier": "edge"}
TTFT_B, TTFT_C = f"{TIME_TO_FIRST_TOKEN}_bucket", f"{TIME_TO_FIRST_TOKEN}_count"
TPOT_B, TPOT_C = f"{TIME_PER_OUTPUT_TOKEN}_bucket", f"{TIME_PER_OUTPUT_TOKEN}_count"

# (name, labels): every series of the history. `service_class` is optional: the cache series has none.
Key = tuple[str, dict[str, str]]


def _series(seed: int = 17) -> list[tuple[str, dict[str, str], np.ndarray]]:
    rng = np.random.default_rng(seed)
    out: list[tuple[str, dict[str, str], np.ndarray]] = []

    def add(name: str, values: np.ndarray, **labels: str) -> np.ndarray:
        out.append((name, {**BASE, **labels}, values))
        return values

    for cls, (low, high) in (("interactive", (60, 120)), ("batch", (10, 40))):
        ok = add(
            REQUESTS_TOTAL, rng.integers(low, high, MINUTES), route="local", outcome="ok", service_class=cls
        )
        add(REQUESTS_TOTAL, rng.integers(0, 5, MINUTES), route="local", outcome="error", service_class=cls)
        add(REQUESTS_TOTAL, rng.integers(0, 3, MINUTES), route="local", outcome="shed", service_class=cls)
        # time to first token of the ok answers: le 0.3 spelled differently per class
        under_1 = np.maximum(ok - rng.integers(0, 4, MINUTES), 0)
        under_03 = np.maximum(under_1 - rng.integers(0, 15, MINUTES), 0)
        le_03 = "0.3" if cls == "interactive" else "3e-01"
        labels = {"route": "local", "outcome": "ok", "service_class": cls}
        add(TTFT_B, under_03, **labels, le=le_03)
        add(TTFT_B, under_1, **labels, le="1")
        add(TTFT_B, ok, **labels, le="+Inf")
        add(TTFT_C, ok, **labels)
        timeouts = rng.integers(0, 3, MINUTES)
        add(
            TTFT_B,
            np.zeros(MINUTES, dtype=np.int64),
            route="local",
            outcome="timeout",
            service_class=cls,
            le=le_03,
        )
        add(TTFT_B, timeouts, route="local", outcome="timeout", service_class=cls, le="+Inf")
        add(TTFT_C, timeouts, route="local", outcome="timeout", service_class=cls)
        # time per output token
        under_005 = np.maximum(ok - rng.integers(0, 20, MINUTES), 0)
        add(TPOT_B, under_005, route="local", service_class=cls, le="0.05")
        add(TPOT_B, ok, route="local", service_class=cls, le="+Inf")
        add(TPOT_C, ok, route="local", service_class=cls)
        add(TOKENS_TOTAL, ok * 500, route="local", provider="self", model="llama-3-8b", direction="input",
            service_class=cls)  # fmt: skip
    # answers of no class (a cache in front of the model): counted by SLOs without a class only
    cache_ok = add(REQUESTS_TOTAL, rng.integers(20, 50, MINUTES), route="cache", outcome="ok")
    add(TTFT_B, cache_ok, route="cache", outcome="ok", le="0.3")
    add(TTFT_B, cache_ok, route="cache", outcome="ok", le="+Inf")
    add(TTFT_C, cache_ok, route="cache", outcome="ok")
    return out


SERIES = _series()


def keys(name: str, **match: str | None) -> list[Key]:
    """The series of `name` whose labels equal `match` (None: the label must be absent)."""
    out = []
    for n, labels, _ in SERIES:
        if n != name:
            continue
        if all(labels.get(k) == v for k, v in match.items()):
            out.append((n, labels))
    assert out, (name, match)
    return out


def values(chosen: list[Key]) -> np.ndarray:
    total = np.zeros(MINUTES, dtype=np.int64)
    for n, labels, v in SERIES:
        if (n, labels) in chosen:
            total += v
    return total


# The SLOs under test and their good/valid series, picked by hand from the contract's definitions.
SLOS: dict[str, tuple[dict[str, Any], list[Key], list[Key]]] = {
    # TTFT within 300 ms, every class: ok answers under 0.3 out of ok and timed-out ones
    "ttft": (
        {"sli": {"kind": "ttft", "threshold_ms": 300}},
        keys(TTFT_B, outcome="ok", le="0.3") + keys(TTFT_B, outcome="ok", le="3e-01"),
        keys(TTFT_C),
    ),
    # TTFT of the batch class only
    "ttft-batch": (
        {"sli": {"kind": "ttft", "threshold_ms": 300}, "service_class": "batch"},
        keys(TTFT_B, outcome="ok", le="3e-01", service_class="batch"),
        keys(TTFT_C, service_class="batch"),
    ),
    # time per output token within 50 ms, interactive only
    "tpot-interactive": (
        {"sli": {"kind": "tpot", "threshold_ms": 50}, "service_class": "interactive"},
        keys(TPOT_B, le="0.05", service_class="interactive"),
        keys(TPOT_C, service_class="interactive"),
    ),
    # availability of the interactive class: ok out of ok and error (shed is not valid)
    "avail-interactive": (
        {"sli": {"kind": "availability"}, "service_class": "interactive"},
        keys(REQUESTS_TOTAL, outcome="ok", service_class="interactive"),
        keys(REQUESTS_TOTAL, outcome="ok", service_class="interactive")
        + keys(REQUESTS_TOTAL, outcome="error", service_class="interactive"),
    ),
    # availability of every class, including the series without one
    "avail-all": (
        {"sli": {"kind": "availability"}},
        keys(REQUESTS_TOTAL, outcome="ok"),
        keys(REQUESTS_TOTAL, outcome="ok") + keys(REQUESTS_TOTAL, outcome="error"),
    ),
}


def create_slos(names: list[str] | None = None) -> dict[str, Any]:
    from slo.services import slo_create

    base = {
        "service": "shelf-vision",
        "tier": "edge",
        "objective": 99.0,
        "window": {"type": "rolling", "days": 28},
    }
    return {
        name: slo_create(actor=None, data={**base, "name": name, **doc})
        for name, (doc, _, _) in SLOS.items()
        if names is None or name in names
    }


# -- push ---------------------------------------------------------------------------------------


def push_payload(minutes: range) -> dict[str, Any]:
    return {
        "contract_version": 1,
        "gateway": "edge-1",
        "minutes": [
            {
                "minute": iso(i),
                "counters": [
                    {"name": n, "labels": dict(labels), "increase": int(v[i])} for n, labels, v in SERIES
                ],
            }
            for i in minutes
        ],
    }


@pytest.mark.django_db
def test_pushed_ttft_tpot_and_class_slos_equal_the_independent_counts(shelf_service: Any) -> None:
    slos = create_slos()
    result = telemetry_batch_ingest(source="gateway:1", payload=push_payload(range(MINUTES)), now=NOW)
    assert result.minutes == MINUTES
    for name, (_, good, valid) in SLOS.items():
        data = sli_minutes([slos[name].pk], at(0), at(MINUTES))
        assert data.present.all(), name
        assert data.good[0].tolist() == values(good).tolist(), name
        assert data.valid[0].tolist() == values(valid).tolist(), name
    # the class SLOs really are narrower: batch TTFT sees fewer events than all classes
    assert values(SLOS["ttft-batch"][2]).sum() < values(SLOS["ttft"][2]).sum()


@pytest.mark.django_db
def test_an_unknown_class_or_a_missing_llm_label_is_refused_with_its_path(shelf_service: Any) -> None:
    payload = push_payload(range(1))
    payload["minutes"][0]["counters"][0]["labels"]["service_class"] = "premium"
    del payload["minutes"][0]["counters"][-1]["labels"]["route"]
    with pytest.raises(ValidationFailed) as err:
        telemetry_batch_ingest(source="gateway:1", payload=payload, now=NOW)
    paths = {p["path"] for p in err.value.problems}
    last = len(payload["minutes"][0]["counters"]) - 1
    assert "minutes[0].counters[0].labels.service_class" in paths
    assert f"minutes[0].counters[{last}].labels" in paths


@pytest.mark.django_db
def test_an_slo_with_an_unknown_class_is_refused_with_its_path(shelf_service: Any) -> None:
    from slo.services import slo_create

    doc = {
        "name": "x",
        "service": "shelf-vision",
        "service_class": "premium",
        "sli": {"kind": "ttft", "threshold_ms": 300},
        "objective": 99.0,
        "window": {"days": 28},
    }
    with pytest.raises(ValidationFailed) as err:
        slo_create(actor=None, data=doc)
    assert [p["path"] for p in err.value.problems] == ["service_class"]
    with pytest.raises(ValidationFailed) as err:
        slo_create(actor=None, data={**doc, "service_class": None, "sli": {"kind": "ttft"}})
    assert [p["path"] for p in err.value.problems] == ["sli"]


# -- pull from a real Prometheus -----------------------------------------------------------------


def llm_history(start_s: int) -> History:
    """The same series as scraped by Prometheus every 15 s; one interactive TTFT bucket series has a
    3-minute scrape gap (its SLOs miss those minutes and the one after, by the contract's rules)."""
    history = History(start_s=start_s, minutes=MINUTES)
    all_on = np.ones(MINUTES, dtype=np.bool_)
    gap = all_on.copy()
    gap[30:33] = False
    for n, labels, v in SERIES:
        gapped = n == TTFT_B and labels.get("service_class") == "interactive" and labels.get("le") == "0.3"
        history.add(SeriesHistory(n, labels, v, gap if gapped else all_on))
    return history


@pytest.fixture(scope="module")
def llm_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Any:
    support.require_prometheus()
    workdir: Path = tmp_path_factory.mktemp("prometheus-llm")
    history = llm_history(support.history_start_s())
    server = support.start_with_history(workdir, history)
    try:
        yield support.LoadedPrometheus(server, history)
    finally:
        server.stop()


@pytest.mark.prometheus
@pytest.mark.django_db
def test_pulled_ttft_tpot_and_class_slos_equal_the_independent_counts(
    shelf_service: Any, llm_prometheus: support.LoadedPrometheus
) -> None:
    slos = create_slos()
    source = telemetry_source_create(
        actor=None,
        data={
            "name": "llm-prom",
            "url": llm_prometheus.server.url,
            "tier": "edge",
            "scrape_lag_s": 0,
            "backfill_minutes": MINUTES,
        },
    )
    start = from_epoch_minute(llm_prometheus.history.start_s // 60)
    result = telemetry_source_pull(source_id=source.pk, now=start + timedelta(minutes=MINUTES))
    assert result.ok, result

    for name, (_, good, valid) in SLOS.items():
        good_values, good_present = expected_sum(llm_prometheus.history, good)
        valid_values, valid_present = expected_sum(llm_prometheus.history, valid)
        present = good_present & valid_present
        data = sli_minutes([slos[name].pk], start, start + timedelta(minutes=MINUTES))
        assert np.flatnonzero(~data.present[0]).tolist() == np.flatnonzero(~present).tolist(), name
        assert data.good[0].tolist() == np.where(present, good_values, 0).tolist(), name
        assert data.valid[0].tolist() == np.where(present, valid_values, 0).tolist(), name
        # and the same as pushed, wherever both have the minute
        assert data.good[0][present].tolist() == values(good)[present].tolist(), name
    # the gap shows in the SLOs that read the gapped series, and only there
    missing = {name: int((~sli_minutes([s.pk], start, start + timedelta(minutes=MINUTES)).present[0]).sum())
               for name, s in slos.items()}  # fmt: skip
    assert missing == {
        "ttft": 5,
        "ttft-batch": 1,
        "tpot-interactive": 1,
        "avail-interactive": 1,
        "avail-all": 1,
    }


def test_a_class_scoped_ttft_slo_round_trips_through_openslo() -> None:
    from slo.contract import sli_queries
    from slo.openslo import export_openslo_with_report, import_openslo
    from slo.spec import SloSpec

    spec = SloSpec.model_validate(
        {
            "name": "chat-first-token",
            "service": "shelf-vision",
            "tier": "edge",
            "service_class": "interactive",
            "sli": {"kind": "ttft", "threshold_ms": 300},
            "objective": 99.0,
            "window": {"days": 28},
        }
    )
    queries = sli_queries(spec)
    assert 'service_class="interactive"' in queries.total and 'service_class="interactive"' in (
        queries.good or ""
    )
    text, report = export_openslo_with_report([spec], queries_for=sli_queries)
    assert report == []
    again = import_openslo(text)
    assert again.problems == [] and again.slos == [spec]
