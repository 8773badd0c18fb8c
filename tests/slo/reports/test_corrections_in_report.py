"""A report lists the status corrections applied in its period (who wrote and approved them, when
they took effect) and its budget figures leave their minutes out, against plain Python."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.test import Client

from slo.corrections.services import correction_create

from .conftest import WEEK_END, WEEK_START
from .test_numbers import independent, the_report

pytestmark = pytest.mark.django_db

INCIDENT = WEEK_START + timedelta(days=2, hours=3)  # the fixture's two hours of 20% errors


def test_the_report_lists_the_correction_and_its_figures_exclude_its_minutes(
    make_slo, history, backdate_versions, users
):
    slo = make_slo(objective=99.0)
    correction = correction_create(
        actor=users["operator"],
        data={
            "reason": "accepted incident INC-7: the model registry was down",
            "scope": {"service": "shelf-vision"},
            "start": INCIDENT.isoformat(),
            "end": (INCIDENT + timedelta(minutes=120)).isoformat(),
        },
    )
    hist = history(slo, seed=1)
    backdate_versions()
    report = the_report()
    service = report.numbers["services"][0]

    # Independent: the fixture's minutes with the incident's 120 minutes set to nothing.
    lo = int((INCIDENT - hist.start).total_seconds() // 60)
    hist.good = hist.good.copy()
    hist.valid = hist.valid.copy()
    hist.good[lo : lo + 120] = 0
    hist.valid[lo : lo + 120] = 0
    expected = independent(hist, WEEK_START, WEEK_END, 99.0)
    got = service["slos"][0]["period"]
    for key in ("sli", "bad", "valid", "error_budget_remaining_ratio", "burn_rate"):
        assert got[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-9), key
    excluded_present = int(np.count_nonzero(hist.present[lo : lo + 120]))
    assert excluded_present > 100  # the fixture drops ~3% of minutes: most were recorded

    [listed] = service["corrections"]
    assert listed["id"] == correction.pk and listed["author"] == "otto"
    assert listed["excluded_minutes"] == 120 and listed["span_count"] == 1
    assert listed["spans"] == [
        {"start": INCIDENT.isoformat(), "end": (INCIDENT + timedelta(minutes=120)).isoformat()}
    ]
    assert listed["applied_at"] and listed["approved_by"] is None

    client = Client()
    client.force_login(users["viewer"])
    page = client.get(f"/reports/{report.pk}/").content.decode()
    assert "Corrections applied" in page
    assert "accepted incident INC-7: the model registry was down" in page
    assert "120 min in 1 span" in page and "otto" in page


def test_a_report_without_corrections_says_so(make_slo, history, backdate_versions, users):
    history(make_slo(objective=99.0), seed=2)
    backdate_versions()
    report = the_report()
    assert report.numbers["services"][0]["corrections"] == []
    client = Client()
    client.force_login(users["viewer"])
    page = client.get(f"/reports/{report.pk}/").content.decode()
    assert "No status correction excluded minutes in this period." in page
