"""Config pushes are signed (HMAC-SHA256 over "{t}.{body}") with replay protection, checked against a
real reference gateway process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controlplane.lib.signing import SIGNATURE_HEADER, TOLERANCE_S, sign
from routing.fleet.bundle import bundle_bytes
from tests.gateway.support import GatewayProcess, free_port, good_bundle

pytestmark = pytest.mark.slow

SECRET = "whsec_security-test-secret"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path / "gw", free_port(), SECRET, {"name": "gw-sec"}).start()
    yield process
    process.stop()


def test_a_captured_push_replayed_verbatim_is_refused(gateway: GatewayProcess) -> None:
    body = bundle_bytes(good_bundle(1, description="first"))
    header = sign(SECRET, body, timestamp=int(time.time()))
    first = gateway.push({}, body=body, header=header)
    assert first.status_code == 200 and first.json()["status"] == "ack"
    replay = gateway.push({}, body=body, header=header)
    assert replay.status_code == 409 and replay.json()["status"] == "replay"
    assert gateway.status()["applied_revision"] == 1


def test_a_replay_of_an_old_revision_cannot_roll_the_gateway_back(gateway: GatewayProcess) -> None:
    old_body = bundle_bytes(good_bundle(1, description="old"))
    old_header = sign(SECRET, old_body, timestamp=int(time.time()))
    assert gateway.push({}, body=old_body, header=old_header).status_code == 200
    assert gateway.push(good_bundle(2, description="new")).status_code == 200
    replay = gateway.push({}, body=old_body, header=old_header)
    assert replay.status_code == 409
    assert gateway.status()["routing_policy_description"] == "new"


@pytest.mark.parametrize(
    "make_header",
    [
        lambda body: sign(SECRET, body, timestamp=int(time.time()) - TOLERANCE_S - 5),  # too old
        lambda body: sign(SECRET, body, timestamp=int(time.time()) + TOLERANCE_S + 5),  # from the future
        lambda body: sign("whsec_wrong-secret", body, timestamp=int(time.time())),  # wrong key
        lambda body: sign(
            "whsec_wrong-secret",
            body,
            timestamp=int(time.time()),  # two keys, neither ours
            previous_secret="whsec_also-wrong",
        ),
        lambda body: sign(
            SECRET,
            body + b" ",
            timestamp=int(time.time()),  # ours among two, another body
            previous_secret="whsec_wrong-secret",
        ),
        lambda body: sign(SECRET, body + b" ", timestamp=int(time.time())),  # another body
        lambda body: "",  # unsigned
        lambda body: "t=abc,v1=00",  # malformed
    ],
)
def test_unsigned_tampered_or_stale_pushes_are_refused(
    gateway: GatewayProcess, make_header: Callable
) -> None:
    body = bundle_bytes(good_bundle(5, description="evil"))
    response = gateway.push({}, body=body, header=make_header(body))
    assert response.status_code == 401
    assert gateway.status()["applied_revision"] is None
    assert SIGNATURE_HEADER == "X-Signature"
