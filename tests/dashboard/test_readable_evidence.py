"""Release, SLO and overview pages show evidence as sentences and tables, never as Python dict
dumps, and name alerts by SLO and severity with a link to the SLO."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def _no_dict_repr(body: str) -> None:
    # a Python dict/list repr shows as "{'" or "[{'" (escaped or not); the raw JSON uses double quotes
    text = html.unescape(body)
    assert "{'" not in text and "['" not in text, re.findall(r".{60}\{'.{60}", text)[:3]


def test_release_page_states_each_gate_in_words_with_raw_json_one_click_away(
    page_for: Any, pending_release: Any
) -> None:
    gates = {g.gate: g.outcome for g in pending_release.gate_results.all()}
    assert {"documents", "error_budget", "paging", "data_quality", "simulation"} <= set(gates)
    body = page_for("viewer").get(f"/releases/{pending_release.pk}/").content.decode()
    _no_dict_repr(body)
    text = html.unescape(body)
    assert f"Documents {'passed' if gates['documents'] == 'pass' else 'failed'}" in text
    assert "Paging gate passed: no SLO of the service is paging." in text
    assert "Data quality gate passed: every SLO has complete, fresh telemetry." in text
    assert "Error budget gate passed for a" in text
    assert re.search(r"Simulation (passed|failed|was inconclusive|was not evaluated)", text)
    # the raw evidence is pretty-printed JSON inside a <details>
    raw = re.findall(r"<summary>Raw JSON of Paging</summary><pre>(.*?)</pre>", body, re.S)
    assert raw and '"paging_slos": []' in html.unescape(raw[0])


def test_release_page_shows_canary_measurements_per_wave(page_for: Any, pending_release: Any) -> None:
    from django.utils import timezone

    pending_release.gate_results.create(
        gate="canary",
        stage="canary:0",
        outcome="fail",
        at=timezone.now(),
        evidence={
            "verdict": "fail",
            "checks": [
                {
                    "name": "p95_latency",
                    "outcome": "fail",
                    "value": 250.0,
                    "threshold": 110.0,
                    "detail": "baseline p95 100.0 ms",
                }
            ],
            "window": {"start": "2026-12-06T03:00:00+00:00", "end": "2026-12-06T03:05:00+00:00"},
            "canary_gateways": [1],
            "baseline_gateways": [2],
        },
    )
    text = html.unescape(page_for("viewer").get(f"/releases/{pending_release.pk}/").content.decode())
    assert "canary, wave 1" in text
    assert "failed: canary p95 latency (ms) above the limit." in text
    assert "at most 110.0 ms (baseline p95 100.0 ms)" in text


def test_slo_page_names_alerts_and_explains_their_evidence(page_for: Any, evaluated: dict[str, Any]) -> None:
    burning = evaluated["burning"]
    body = page_for("viewer").get(f"/slos/{burning.pk}/").content.decode()
    _no_dict_repr(body)
    text = html.unescape(body)
    assert "burning-availability page (burn rate)" in text
    assert re.search(r"The page alert fired: \S+ and \S+ burned [\d.]+× and [\d.]+× against [\d.]+×\.", text)
    assert f"slo:{burning.pk}:page" not in text


def test_overview_names_firing_alerts_by_slo_and_links_them(page_for: Any, evaluated: dict[str, Any]) -> None:
    burning = evaluated["burning"]
    body = page_for("viewer").get("/").content.decode()
    assert f'<a href="/slos/{burning.pk}/">burning-availability page (burn rate)</a>' in body
    assert f"slo:{burning.pk}:" not in body
