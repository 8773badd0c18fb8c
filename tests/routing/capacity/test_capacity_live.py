"""The demo's capacity loop end to end, with shortened intervals: a real reference gateway
heartbeats to a live server; overloading it (the documented `overload` file in its state folder)
opens an offload recommendation, visible on the service page and at the scaler (KEDA) endpoint;
removing the file clears it once, without flapping."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from gateway.launch import start_gateway, stop_gateways, wait_ready
from routing.models.capacity import CapacityRecommendation
from routing.tasks.capacity import evaluate_capacity
from tests.gateway.support import free_port

WINDOW_S = 2
CLEAR_AFTER_S = 6


def _evaluate() -> dict:
    return evaluate_capacity.apply().get()  # the beat task's body, through Celery's task machinery


@pytest.mark.django_db(transaction=True)
def test_overloading_a_live_gateway_opens_an_offload_recommendation_that_clears_without_flapping(
    live_server, register, api_for, users, settings, tmp_path
):
    settings.CAPACITY_WINDOW_S = WINDOW_S
    settings.CAPACITY_CLEAR_AFTER_S = CLEAR_AFTER_S
    settings.CAPACITY_LOOKBACK_S = 60
    credentials = register("edge-live")
    port, state = free_port(), tmp_path / "state"
    state.mkdir()
    config = tmp_path / "gateway.toml"
    config.write_text(
        "[gateway]\n"
        f'name = "edge-live"\nservice = "shelf-vision"\ntier = "edge"\nid = {credentials.gateway.pk}\n'
        f'listen = "127.0.0.1:{port}"\nstate_dir = "{state}"\nseed = 3\n'
        "[control_plane]\n"
        f'url = "{live_server.url}"\ntoken = "{credentials.token}"\npoll_interval_s = 0\n'
        "heartbeat_interval_s = 0.5\n"
        "[traffic]\nrps = 20\ntick_s = 0.2\n"
    )
    process = start_gateway(config)
    viewer = api_for("viewer")
    page = Client()
    page.force_login(users["viewer"])
    try:
        assert wait_ready("127.0.0.1", port, timeout_s=30, process=process)
        # calm: a few windows of ordinary health, no advice
        for _ in range(3):
            time.sleep(WINDOW_S)
            assert _evaluate()["opened"] == 0
        assert _evaluate()["pools"] == 1

        (state / "overload").touch()
        overloaded_at = time.monotonic()
        rec = None
        while rec is None and time.monotonic() - overloaded_at < 60:
            time.sleep(WINDOW_S)
            _evaluate()
            rec = CapacityRecommendation.objects.filter(state="active").first()
        assert rec is not None, (tmp_path / "gateway.log").read_text()[-2000:]
        assert rec.action == "offload_to_cloud" and rec.tier == "edge" and rec.region == "eu-west"
        assert "92 C, above 85 C" in rec.reason
        scaler = viewer.get("/api/v1/capacity/scaler/", {"service": "shelf-vision", "tier": "edge"}).json()
        assert scaler["offloadWorkers"] == rec.amount == 2 and scaler["activeRecommendations"] == 1
        assert "offload to cloud</strong> by 2" in page.get("/services/shelf-vision/").content.decode()

        # overloaded for a while: the same row is confirmed, never a second one
        for _ in range(3):
            time.sleep(WINDOW_S)
            _evaluate()
        assert CapacityRecommendation.objects.count() == 1

        (state / "overload").unlink()
        stopped_at = time.monotonic()
        states = []
        while time.monotonic() - stopped_at < 60:
            time.sleep(WINDOW_S)
            _evaluate()
            rec.refresh_from_db()
            states.append(rec.state)
            if rec.state == "cleared":
                break
        assert rec.state == "cleared", states
        cleared_after = time.monotonic() - stopped_at
        assert cleared_after >= CLEAR_AFTER_S  # the calm period held it open
        # after the clear, calm evaluations open nothing (no flapping)
        for _ in range(4):
            time.sleep(WINDOW_S)
            assert _evaluate()["opened"] == 0
        assert list(CapacityRecommendation.objects.values_list("state", flat=True)) == ["cleared"]
        scaler = viewer.get("/api/v1/capacity/scaler/", {"service": "shelf-vision"}).json()
        assert scaler["offloadWorkers"] == 0 and scaler["desiredWorkers"] == scaler["currentWorkers"] == 2
    finally:
        stop_gateways([process])
