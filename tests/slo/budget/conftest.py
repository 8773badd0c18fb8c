"""Fixtures for the budget engine: SLOs with known per-minute history, and a local HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from slo.budget.buckets import MinuteCount
from slo.budget.evaluation import budget_minutes_record
from slo.models import Slo

NOW = datetime(2026, 3, 11, 12, 34, tzinfo=UTC)


@pytest.fixture
def make_slo(users: dict[str, Any], service: Any) -> Callable[..., Slo]:
    from slo.services import slo_create

    counter = iter(range(1000))

    def build(**overrides: Any) -> Slo:
        doc = {
            "name": f"availability-{next(counter)}",
            "service": "shelf-vision",
            "sli": {"kind": "availability"},
            "objective": 99.0,
            "window": {"type": "rolling", "days": 28},
        }
        doc.update(overrides)
        return slo_create(actor=users["operator"], data=doc)

    return build


def load_minutes(slo: Slo, start: datetime, good: np.ndarray, valid: np.ndarray, present: np.ndarray) -> None:
    """Record the present minutes of arrays that start at `start`."""
    rows = [
        MinuteCount(slo.pk, start + timedelta(minutes=int(i)), float(good[i]), float(valid[i]))
        for i in np.flatnonzero(present)
    ]
    # `now=start`: history loaded for a test is recorded as if it arrived while it happened.
    budget_minutes_record(rows=rows, now=start)


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every POST (path, headers, body)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def json(self, index: int) -> Any:
        return json.loads(self.requests[index]["body"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
