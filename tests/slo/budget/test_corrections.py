"""Status corrections on real PostgreSQL: a recurring maintenance window removes exactly its
minutes from an SLO's budget (checked against plain Python over the raw minutes, across a DST
change), a correction made for the past recomputes the budget through the backfill path, and one
that would hide an ongoing page waits for an approver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.utils import timezone

from controlplane.models.audit import AuditEvent
from slo.budget.buckets import MinuteCount, floor_hour
from slo.budget.evaluation import budget_minutes_record, slo_evaluate
from slo.budget.feed import budget_sync, budget_sync_pending
from slo.models.budget import AlertState, BudgetDay, BudgetHour, BudgetMinute, SloStatus
from slo.models.corrections import Correction, CorrectionVersion
from slo.models.telemetry import SliSpan
from slo.telemetry.derive import SliRow
from slo.telemetry.storage import telemetry_sli_rows_store

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
SUNDAYS = {
    "reason": "weekly maintenance of the edge fleet",
    "scope": {"service": "shelf-vision", "tier": "edge"},
    "start": "2026-03-01T02:00:00+01:00",
    "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=SU", "timezone": "Europe/Berlin", "duration_minutes": 120},
}


def in_sunday_window(minute: datetime) -> bool:
    """Independent of the implementation: the minute's wall-clock time in Berlin is a Sunday between
    02:00 and 04:00 (a fall-back hour that happens twice counts both times)."""
    local = minute.astimezone(BERLIN)
    return local.weekday() == 6 and 2 <= local.hour < 4


def history(first: datetime, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    valid = rng.integers(50, 500, n).astype(np.float64)
    bad = rng.binomial(valid.astype(np.int64), 0.004).astype(np.float64)
    # Heavy errors inside every maintenance window: the correction must hide exactly these.
    for i in range(n):
        if in_sunday_window(first + timedelta(minutes=i)):
            bad[i] = valid[i] * 0.5
    return valid - bad, valid


def record(slo: Any, first: datetime, good: np.ndarray, valid: np.ndarray) -> None:
    budget_minutes_record(
        rows=[MinuteCount(slo.pk, first + timedelta(minutes=i), good[i], valid[i]) for i in range(len(good))]
    )


def expected(first: datetime, good: np.ndarray, valid: np.ndarray, excluded: Any) -> tuple[float, float]:
    """Plain Python: sums over the raw minutes that the window does not exclude."""
    g = v = 0.0
    for i in range(len(good)):
        if not excluded(first + timedelta(minutes=i)):
            g += float(good[i])
            v += float(valid[i])
    return g, v


def period_of(slo: Any, now: datetime) -> tuple[dict[str, Any], SloStatus]:
    slo_evaluate(slo_ids=[slo.pk], now=now)
    status = SloStatus.objects.get(slo=slo)
    return status.windows["period"], status


def test_a_weekly_window_removes_exactly_its_minutes_across_the_spring_dst_change(
    make_slo: Any, users: dict[str, Any]
) -> None:
    from slo.corrections.services import correction_create

    edge = make_slo(name="edge-availability", tier="edge")
    cloud = make_slo(name="cloud-availability", tier="public_cloud")  # out of scope
    correction_create(actor=users["operator"], data=SUNDAYS)
    # Three weeks around the spring-forward Sunday (2026-03-29: 02:00-03:00 does not exist).
    first = datetime(2026, 3, 14, 0, 0, tzinfo=UTC)
    now = datetime(2026, 4, 6, 0, 0, tzinfo=UTC)
    n = int((now - first).total_seconds() // 60)
    good, valid = history(first, n, seed=22)
    record(edge, first, good, valid)
    record(cloud, first, good, valid)

    # The windows the implementation must find: the plain-Python predicate says 120, 120, 60 and 120
    # minutes (the DST Sunday is one real hour, 01:00-02:00 UTC).
    excluded_minutes = [
        first + timedelta(minutes=i) for i in range(n) if in_sunday_window(first + timedelta(minutes=i))
    ]
    assert len(excluded_minutes) == 120 + 120 + 60 + 120
    assert datetime(2026, 3, 29, 1, 0, tzinfo=UTC) in excluded_minutes
    assert datetime(2026, 3, 29, 2, 0, tzinfo=UTC) not in excluded_minutes

    g, v = expected(first, good, valid, in_sunday_window)
    period, status = period_of(edge, now)
    assert (period["good"], period["valid"]) == (g, v)
    assert status.error_budget_remaining == pytest.approx(1 - (v - g) / (0.01 * v), rel=1e-12)
    # Excluded minutes are neither good nor bad: stored as zero units, present (not missing).
    zeros = BudgetMinute.objects.filter(slo_id=edge.pk, good=0, valid=0, events=0)
    assert sorted(zeros.values_list("minute", flat=True)) == excluded_minutes
    assert period["missing_minutes"] == 28 * 1440 - n  # only the minutes before the history
    # The rollups agree with the minutes, hour by hour.
    for hour, hg, hv in BudgetHour.objects.filter(slo_id=edge.pk).values_list("hour", "good", "valid"):
        i0 = int((hour - first).total_seconds() // 60)
        eg, ev = expected(hour, good[i0 : i0 + 60], valid[i0 : i0 + 60], in_sunday_window)
        assert (hg, hv) == (eg, ev), hour
    day_sums = BudgetDay.objects.filter(slo_id=edge.pk).values_list("good", "valid")
    assert sum(d[1] for d in day_sums) == v

    # The SLO out of scope keeps every minute.
    period, _ = period_of(cloud, now)
    assert (period["good"], period["valid"]) == (float(good.sum()), float(valid.sum()))


def test_the_fall_back_sunday_excludes_three_real_hours(make_slo: Any, users: dict[str, Any]) -> None:
    from slo.corrections.services import correction_create

    edge = make_slo(name="edge-availability", tier="edge")
    correction_create(actor=users["operator"], data=SUNDAYS)
    first = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)  # around 2026-10-25, 03:00 CEST -> 02:00 CET
    now = datetime(2026, 10, 25, 6, 0, tzinfo=UTC)
    n = int((now - first).total_seconds() // 60)
    good, valid = history(first, n, seed=7)
    record(edge, first, good, valid)
    zeros = list(
        BudgetMinute.objects.filter(slo_id=edge.pk, valid=0)
        .order_by("minute")
        .values_list("minute", flat=True)
    )
    assert (zeros[0], zeros[-1], len(zeros)) == (
        datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 59, tzinfo=UTC),
        180,
    )
    g, v = expected(first, good, valid, in_sunday_window)
    period, _ = period_of(edge, now)
    assert (period["good"], period["valid"]) == (g, v)


def store_telemetry(slo: Any, first: int, good: np.ndarray, valid: np.ndarray, now: datetime) -> None:
    rows = [SliRow(slo.pk, first + i, int(good[i]), int(valid[i]), True) for i in range(len(good))]
    telemetry_sli_rows_store(source="corrections-test", rows=rows, mode="retired", now=now)


def test_a_correction_made_for_the_past_recomputes_the_budget_and_deleting_it_restores_it(
    make_slo: Any, api_for: Any
) -> None:
    slo = make_slo(name="edge-availability", tier="edge")
    now = floor_hour(timezone.now())
    first_dt = now - timedelta(days=2)
    first = int(first_dt.timestamp() // 60)
    n = 2 * 1440
    rng = np.random.default_rng(5)
    valid = rng.integers(100, 200, n)
    bad = rng.binomial(valid, 0.002)
    incident = slice(1500, 1590)  # yesterday: 90 minutes of an accepted incident
    bad[incident] = valid[incident] // 3
    good = valid - bad
    store_telemetry(slo, first, good, valid, now)
    budget_sync_pending(now=now)
    period, before = period_of(slo, now)
    assert (period["good"], period["valid"]) == (float(good.sum()), float(valid.sum()))

    start = first_dt + timedelta(minutes=1500)
    body = {
        "reason": "accepted incident INC-22: upstream provider outage",
        "scope": {"slos": ["shelf-vision/edge-availability"]},
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=90)).isoformat(),
        "note": "agreed with the service owner",
    }
    response = api_for("operator").post("/api/v1/corrections/", body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["state"] == "active" and created["author_name"] == "otto"
    assert SliSpan.objects.filter(slo_id=slo.pk).exists()  # the past is queued for recompute

    budget_sync_pending(now=now)
    mask = np.zeros(n, dtype=bool)
    mask[incident] = True
    period, after = period_of(slo, now + timedelta(minutes=1))
    assert (period["good"], period["valid"]) == (float(good[~mask].sum()), float(valid[~mask].sum()))
    v, g = float(valid[~mask].sum()), float(good[~mask].sum())
    assert after.error_budget_remaining == pytest.approx(1 - (v - g) / (0.01 * v), rel=1e-12)
    assert after.error_budget_remaining > before.error_budget_remaining
    assert BudgetMinute.objects.filter(slo_id=slo.pk, minute__gte=start, valid=0).count() == 90
    # A full re-read finds nothing to write: the feed compares the corrected units, not the raw ones.
    assert budget_sync(now=now, minutes=2 * 1440 + 60) == 0
    assert AuditEvent.objects.filter(object_type="slo.correction", action="create").count() == 1
    assert CorrectionVersion.objects.filter(correction_id=created["id"]).count() == 1

    # An edit is a new version and moves the exclusion: 30 minutes fewer.
    edited = {**body, "end": (start + timedelta(minutes=60)).isoformat()}
    response = api_for("operator").put(f"/api/v1/corrections/{created['id']}/", edited, format="json")
    assert response.status_code == 200 and response.json()["version"] == 2
    budget_sync_pending(now=now)
    mask[1560:1590] = False
    period, _ = period_of(slo, now + timedelta(minutes=2))
    assert (period["good"], period["valid"]) == (float(good[~mask].sum()), float(valid[~mask].sum()))

    assert api_for("operator").delete(f"/api/v1/corrections/{created['id']}/").status_code == 204
    budget_sync_pending(now=now)
    period, restored = period_of(slo, now + timedelta(minutes=3))
    assert (period["good"], period["valid"]) == (float(good.sum()), float(valid.sum()))
    assert restored.error_budget_remaining == pytest.approx(before.error_budget_remaining, rel=1e-12)
    assert Correction.objects.get(pk=created["id"]).state == "deleted"
    actions = list(
        AuditEvent.objects.filter(object_type="slo.correction")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "update", "delete"]


def firing_page(slo: Any, since: datetime) -> None:
    AlertState.objects.create(
        key=f"slo:{slo.pk}:page",
        service=slo.service,
        slo=slo,
        kind="burn_rate",
        severity="page",
        firing=True,
        since=since,
    )


def test_a_correction_that_would_hide_an_ongoing_page_waits_for_an_approver(
    make_slo: Any, api_for: Any, users: dict[str, Any]
) -> None:
    slo = make_slo(name="edge-availability", tier="edge")
    now = timezone.now().replace(second=0, microsecond=0)
    firing_page(slo, now - timedelta(minutes=20))
    body = {
        "reason": "the provider says it is their outage",
        "scope": {"service": "shelf-vision"},
        "start": (now - timedelta(minutes=30)).isoformat(),
        "end": (now + timedelta(minutes=30)).isoformat(),
    }
    response = api_for("operator").post("/api/v1/corrections/", body, format="json")
    assert response.status_code == 201
    pending = response.json()
    assert pending["state"] == "pending_approval" and pending["effective_spec"] is None
    assert "shelf-vision/edge-availability" in pending["approval_reason"]
    # Not in force: no minute is excluded, nothing is queued.
    assert not SliSpan.objects.filter(slo_id=slo.pk).exists()

    url = f"/api/v1/corrections/{pending['id']}/approve/"
    assert api_for("operator").post(url, {}, format="json").status_code == 403  # not an approver
    assert api_for("viewer").post(url, {}, format="json").status_code == 403
    response = api_for("approver").post(url, {"note": "checked with the provider"}, format="json")
    assert response.status_code == 200, response.content
    approved = response.json()
    assert approved["state"] == "active" and approved["approved_by_name"] == "anna"
    assert approved["effective_version"] == 1 and approved["applied_at"]
    assert SliSpan.objects.filter(slo_id=slo.pk).exists()
    assert api_for("approver").post(url, {}, format="json").status_code == 409  # nothing pending now
    version = CorrectionVersion.objects.get(correction_id=pending["id"], version=1)
    assert version.approved_by_name == "anna" and version.approval_reason

    # The author cannot approve their own: an admin's correction needs another approver.
    response = api_for("admin").post("/api/v1/corrections/", body, format="json")
    own = response.json()
    assert own["state"] == "pending_approval"
    assert (
        api_for("admin").post(f"/api/v1/corrections/{own['id']}/approve/", {}, format="json").status_code
        == 403
    )
    rejected = api_for("approver2").post(f"/api/v1/corrections/{own['id']}/reject/", {}, format="json")
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"

    audit = list(
        AuditEvent.objects.filter(object_type="slo.correction", object_id=str(pending["id"]))
        .order_by("id")
        .values_list("action", "actor_name")
    )
    assert audit == [("create", "otto"), ("approve", "anna")]

    # A window that does not reach the page's windows takes effect at once.
    later = {
        **body,
        "start": (now + timedelta(days=3)).isoformat(),
        "end": (now + timedelta(days=3, hours=1)).isoformat(),
    }
    response = api_for("operator").post("/api/v1/corrections/", later, format="json")
    assert response.json()["state"] == "active"
    # And one for another service's tier is not held by this page either.
    other = {**body, "scope": {"tier": "public_cloud"}}
    assert api_for("operator").post("/api/v1/corrections/", other, format="json").json()["state"] == "active"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"recurrence": {**SUNDAYS["recurrence"], "timezone": "Europe/Atlantis"}}, "recurrence.timezone"),
        ({"recurrence": {**SUNDAYS["recurrence"], "rrule": "FREQ=WEEKLY;BYDAY=XX"}}, "recurrence.rrule"),
        ({"recurrence": {**SUNDAYS["recurrence"], "rrule": "FREQ=MINUTELY"}}, "recurrence.rrule"),
        ({"recurrence": {**SUNDAYS["recurrence"], "duration_minutes": 0}}, "recurrence.duration_minutes"),
        ({"recurrence": None, "end": "2026-02-01T00:00:00Z"}, "end"),
        ({"recurrence": None}, "end"),
        ({"start": "2026-03-01T02:00:00"}, "start"),
        ({"start": "2026-03-01T02:00:30Z"}, "start"),
        ({"scope": {"slos": ["shelf-vision/nope"]}}, "scope.slos[0]"),
        ({"scope": {}}, "scope"),
        ({"scope": {"tier": "moon"}}, "scope.tier"),
        ({"reason": ""}, "reason"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_a_400_with_the_field_path_and_stores_nothing(
    make_slo: Any, api_for: Any, change: dict[str, Any], path: str
) -> None:
    make_slo(name="edge-availability", tier="edge")
    body = {k: v for k, v in {**SUNDAYS, **change}.items() if v is not None}
    response = api_for("operator").post("/api/v1/corrections/", body, format="json")
    assert response.status_code == 400, response.content
    assert path in [p["path"] for p in response.json()["errors"]], response.json()
    assert (
        not Correction.objects.exists()
        and not AuditEvent.objects.filter(object_type="slo.correction").exists()
    )


def test_viewers_read_versions_and_a_patch_is_a_new_version(make_slo: Any, api_for: Any) -> None:
    make_slo(name="edge-availability", tier="edge")
    created = api_for("operator").post("/api/v1/corrections/", SUNDAYS, format="json").json()
    url = f"/api/v1/corrections/{created['id']}/"
    patched = api_for("operator").patch(url, {"reason": "monthly firmware", "note": "renamed"}, format="json")
    assert patched.status_code == 200
    body = patched.json()
    assert body["version"] == 2 and body["spec"]["reason"] == "monthly firmware"
    assert body["spec"]["recurrence"] == SUNDAYS["recurrence"] and body["effective_version"] == 2
    versions = api_for("viewer").get(f"{url}versions/").json()["results"]
    assert [(v["version"], v["note"]) for v in versions] == [(2, "renamed"), (1, "created")]
    listed = api_for("viewer").get("/api/v1/corrections/?state=active").json()["results"]
    assert [c["id"] for c in listed] == [created["id"]]
    assert api_for("viewer").patch(url, {"reason": "x"}, format="json").status_code == 403
    assert api_for("operator").get("/api/v1/corrections/999999/").status_code == 404
    bad = api_for("operator").patch(url, {"end": "2020-01-01T00:00:00Z"}, format="json")
    assert bad.status_code == 400 and [e["path"] for e in bad.json()["errors"]] == ["end"]
    assert Correction.objects.get(pk=created["id"]).version == 2  # nothing stored


def test_a_correction_of_a_member_of_a_paging_composite_waits_for_an_approver(
    make_slo: Any, users: dict[str, Any]
) -> None:
    from slo.composites.services import composite_create
    from slo.corrections.services import correction_create

    edge = make_slo(name="edge-availability", tier="edge")
    cloud = make_slo(name="cloud-availability", tier="public_cloud")
    composite = composite_create(
        actor=users["operator"],
        data={
            "name": "journey",
            "service": "shelf-vision",
            "aggregation": "weighted_average",
            "objective": 99.0,
            "window": {"type": "rolling", "days": 28},
            "members": [
                {"slo": "shelf-vision/edge-availability"},
                {"slo": "shelf-vision/cloud-availability"},
            ],
        },
    )
    now = timezone.now().replace(second=0, microsecond=0)
    AlertState.objects.create(
        key=f"composite:{composite.pk}:page",
        service=edge.service,
        kind="composite_burn",
        severity="page",
        firing=True,
        since=now - timedelta(minutes=10),
    )
    body = {
        "reason": "public-cloud maintenance",
        "scope": {"tier": "public_cloud"},
        "start": (now - timedelta(minutes=30)).isoformat(),
        "end": (now + timedelta(minutes=30)).isoformat(),
    }
    held = correction_create(actor=users["operator"], data=body, now=now)
    assert held.state == "pending_approval" and "composite shelf-vision/journey" in held.approval_reason
    assert cloud.pk  # the member in scope
    # A correction of an SLO that is no member of the paging composite is not held.
    make_slo(name="other", tier="private_cloud")
    free = correction_create(
        actor=users["operator"], data={**body, "scope": {"tier": "private_cloud"}}, now=now
    )
    assert free.state == "active"
