"""Delivery to real LiteLLM proxies: the ACK is the read-back, a bundle the proxy cannot run is a
NACK and the proxy keeps its config, and a rollback is a new revision delivered the same way."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.litellm_agent import read_back
from gateway.litellm_config import readback_mismatches
from routing.policy import default_cache_config, default_policy
from tests.gateway.litellm_support import MASTER_KEY, SERVICE, AgentProcess, deployments, litellm_binary

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

GOOD = default_policy(SERVICE, "interactive", 500)
BAD = {
    "service": SERVICE,
    "description": "BAD: everything to the public cloud",
    "rules": [{"name": "everything-to-cloud", "chain": [{"route": "public_cloud", "timeout_ms": 480}]}],
}


def bundle(policy: dict[str, Any]) -> dict[str, Any]:
    return {"routing_policy": policy, "cache_config": default_cache_config(SERVICE), "model_version": None}


@pytest.fixture
def proxies(users: dict[str, Any], service: Any, tmp_path: Path) -> Iterator[list[tuple[Any, AgentProcess]]]:
    from routing.fleet.services import gateway_register

    litellm_binary()
    started: list[tuple[Any, AgentProcess]] = []
    try:
        for index in range(2):
            agent = AgentProcess(tmp_path / f"proxy{index}", signing_secret="")
            agent_port = agent.port
            credentials = gateway_register(
                actor=users["operator"],
                data={
                    "name": f"litellm-{index}",
                    "kind": "litellm-proxy",
                    "service": SERVICE,
                    "tier": "private_cloud",
                    "push_url": f"http://127.0.0.1:{agent_port}/config",
                    "adapter": {"proxy_url": agent.proxy_url, "deployments": deployments()},
                    "adapter_secret": MASTER_KEY,
                },
            )
            agent.signing_secret = credentials.signing_secret
            agent.start()
            started.append((credentials.gateway, agent))
        yield started
    finally:
        for _gateway, agent in started:
            agent.stop()


def running(agent: AgentProcess) -> dict[str, Any]:
    return read_back(agent.proxy_url, MASTER_KEY)


def test_release_nack_and_rollback_are_confirmed_by_read_back(proxies, users, api_for):
    from routing.fleet.delivery import delivery_dispatch_due
    from routing.fleet.services import gateway_set_desired
    from routing.models.fleet import Delivery, Gateway

    ids = [g.pk for g, _ in proxies]
    gateway_set_desired(actor=users["operator"], gateway_ids=ids, bundle_for=bundle(GOOD), reason="initial")
    report = delivery_dispatch_due()
    assert report.outcomes == {"ack": 2}, [(d.state, d.last_error) for d in Delivery.objects.all()]
    for gateway, agent in proxies:
        gateway.refresh_from_db()
        assert gateway.applied_revision == gateway.desired_revision == 1
        view = api_for("viewer").get(f"/api/v1/gateways/{gateway.pk}/compiled/").json()
        assert view["in_sync"] is True and view["diff"] == "", view
        assert readback_mismatches(view["compiled"], running(agent)) == []
        # the running proxy serves the default chain's first hop, with the revision in its model_info
        assert {e["model_info"]["slo_revision"] for e in running(agent)["model_list"]} == {1}
        answer = agent.chat()
        assert (
            answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "ok from local"
        )
        assert any(n["path"].startswith("routing_policy.rules[") for n in view["not_enforced"])

    # the fleet page: desired = applied, and each proxy's config read back matches the compiled one
    from django.test import Client
    from django.urls import reverse

    browser = Client()
    browser.force_login(users["viewer"])
    page = browser.get(reverse("dashboard:fleet")).content.decode()
    assert page.count("running config matches the desired one") == 2, page
    assert "Not enforced on this gateway kind" in page
    detail = browser.get(reverse("dashboard:gateway", args=[ids[0]])).content.decode()
    assert "running config matches the desired one" in detail and "Compiled LiteLLM config" in detail

    # a policy with a route the proxies have no deployment for: NACK, nothing pushed, config kept
    gateway = Gateway.objects.get(pk=ids[0])
    gateway.adapter = {**gateway.adapter, "deployments": {"local": deployments()["local"]}}
    gateway.save()
    gateway_set_desired(
        actor=users["operator"], gateway_ids=[ids[0]], bundle_for=bundle(BAD), reason="needs cloud"
    )
    report = delivery_dispatch_due()
    assert report.outcomes == {"nack": 1}
    gateway.refresh_from_db()
    assert (
        gateway.last_nack_revision == 2
        and "no deployment for route(s) public_cloud" in gateway.last_nack_error
    )
    assert gateway.applied_revision == 1
    assert {e["model_info"]["slo_revision"] for e in running(proxies[0][1])["model_list"]} == {1}
    gateway.adapter = {**gateway.adapter, "deployments": deployments()}
    gateway.save()

    # the bad policy reaches both: every request fails on the public cloud deployment
    gateway_set_desired(actor=users["operator"], gateway_ids=ids, bundle_for=bundle(BAD), reason="bad")
    view = api_for("viewer").get(f"/api/v1/gateways/{ids[1]}/compiled/").json()
    assert view["in_sync"] is False and '"model": "openai/cloud-large"' in view["diff"], view["diff"]
    assert delivery_dispatch_due().outcomes == {"ack": 2}
    before = {}
    for gateway, agent in proxies:
        before[gateway.pk] = running(agent)
        assert agent.chat().status_code >= 500
    # roll back: a newer revision with the previous content, rollback priority, same delivery
    previous = {g.pk: copy.deepcopy(g.revisions.get(revision=1).bundle) for g, _ in proxies}
    gateway_set_desired(
        actor=users["operator"], gateway_ids=ids, bundle_for=previous, reason="rollback", priority="rollback"
    )
    assert delivery_dispatch_due().outcomes == {"ack": 2}
    for gateway, agent in proxies:
        gateway.refresh_from_db()
        assert gateway.applied_revision == gateway.desired_revision
        now_running = running(agent)
        assert now_running != before[gateway.pk]
        first = gateway.revisions.get(revision=1).bundle
        from routing.fleet.adapters import compile_for

        expected = compile_for(gateway, {**first, "revision": gateway.desired_revision}).config
        assert readback_mismatches(expected, now_running) == []
        assert agent.chat().json()["choices"][0]["message"]["content"] == "ok from local"
        assert agent.status()["applied_revision"] == gateway.desired_revision
