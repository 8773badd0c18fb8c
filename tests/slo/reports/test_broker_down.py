"""Generating a report with the broker down: 201 and one report, and the email goes out from the
outbox (the periodic sweep) instead of a 500 after the commit that a client would retry."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.slo.reports.conftest import TZ

# transaction=True: the on-commit enqueue runs inside the request, as in production
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_down() -> Iterator[str]:
    """The Celery app pointed at a port nothing listens on (its connection pools rebuilt)."""
    from controlplane.celery import app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_url = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    saved = app.conf.broker_url, app.conf.broker_write_url

    def use(url: str, write_url: str) -> None:
        app.conf.broker_url, app.conf.broker_write_url = url, write_url
        app._pool = None
        app.amqp._producer_pool = None

    use(closed_url, closed_url)
    try:
        yield closed_url
    finally:
        use(*saved)


def test_a_report_generated_with_the_broker_down_is_201_once_and_mailed_later(
    api_for: Any, make_slo: Any, backdate_versions: Any, locmem_email: Any, broker_down: str
) -> None:
    from slo.models.reports import Report, ReportDelivery
    from slo.tasks.reports import report_deliveries_send_due

    make_slo()
    backdate_versions()
    response = api_for("operator").post(
        "/api/v1/reports/generate/",
        {
            "service": "shelf-vision",
            "period": "week",
            "start": "2026-11-16",
            "time_zone": TZ,
            "recipients": ["ops@example.test"],
        },
    )

    assert response.status_code == 201, response.content[:300]
    assert Report.objects.count() == 1
    delivery = ReportDelivery.objects.get()
    assert delivery.state == "pending" and locmem_email.outbox == []

    # the periodic sweep (beat: slo.reports.send_due) is the retry
    assert report_deliveries_send_due() == {"reclaimed": 0, "sent": 1}
    delivery.refresh_from_db()
    assert delivery.state == "sent" and delivery.attempts == 1
    assert [m.to for m in locmem_email.outbox] == [["ops@example.test"]]
    assert Report.objects.count() == 1
