"""The compose stack's Alertmanager config, run locally by a real Alertmanager (no Docker), sends a
page alert to the control plane's rollback webhook, authenticated with the secret the stack's
bootstrap writes, and the rollout it is about is rolled back.

Only addresses and mount paths of deploy/alertmanager.yml are changed: `http://web:8000` becomes the
live server's URL, and /etc/alertmanager/secrets/ a tmp dir standing for the shared `secrets` volume,
into which `manage.py ensure_webhook_secret` writes the secret exactly as the bootstrap service does.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from routing.models.releases import AlertReceipt, Release, WebhookSecret
from tests.deploy import stack
from tests.support.alertmanager import AlertmanagerServer

pytestmark = [pytest.mark.django_db(transaction=True)]

SERVICE = "shelf-vision"
# What the exported rules label a page alert with (slo/rules.py).
PAGE = {
    "alertname": "SLOErrorBudgetBurnPage",
    "slo_service": SERVICE,
    "slo_name": "latency",
    "slo_tier": "edge",
    "severity": "page",
}


def bootstrap_script() -> str:
    assert ("./deploy/bootstrap.sh", "/usr/local/bin/bootstrap.sh") in stack.mounts("bootstrap")
    return (stack.REPO / "deploy/bootstrap.sh").read_text()


def test_a_page_alert_through_the_stacks_alertmanager_rolls_the_release_back(
    live_server, tmp_path, rolling_edge_hotfix
):
    release = rolling_edge_hotfix

    # The shared secrets volume as Alertmanager mounts it; bootstrap's command fills it.
    root = stack.mounted_tree("alertmanager", tmp_path / "mounts", {"secrets": {"alertmanager_webhook": ""}})
    secret_file = root / "etc/alertmanager/secrets/alertmanager_webhook"
    script = bootstrap_script()
    assert 'SECRETS_DIR="${SECRETS_DIR:-/run/controlplane-secrets}"' in script
    assert 'ensure_webhook_secret --name alertmanager --file "$SECRETS_DIR/alertmanager_webhook"' in script
    call_command("ensure_webhook_secret", name="alertmanager", file=str(secret_file))
    assert secret_file.read_text().startswith("amw_")
    assert WebhookSecret.objects.filter(name="alertmanager").count() == 1

    config = (root / "etc/alertmanager/alertmanager.yml").read_text()
    assert "http://web:8000" in config
    config = stack.relocate(config, "alertmanager", root).replace("http://web:8000", live_server.url)
    server = AlertmanagerServer(tmp_path / "am")
    (tmp_path / "am").mkdir()
    try:
        server.start(config)
        server.post_alerts([{"labels": PAGE, "annotations": {"summary": "edge latency burning"}}])
        server.wait_for(lambda: Release.objects.get(pk=release.pk).state == "rolled_back", 45, "the rollback")
    finally:
        server.stop()

    receipt = AlertReceipt.objects.get(acted=True)
    assert receipt.alertname == "SLOErrorBudgetBurnPage" and receipt.service == SERVICE
    assert receipt.received_by == "alertmanager:alertmanager"  # the secret from the file
    assert receipt.receiver == "controlplane-rollback"
    rollback = Release.objects.get(pk=release.pk).rollbacks.get()
    assert rollback.trigger == "alertmanager"
    assert rollback.evidence["alerts"][0]["labels"]["severity"] == "page"


def test_ensure_webhook_secret_keeps_a_registered_secret_and_replaces_a_lost_one(tmp_path, db):
    path = tmp_path / "alertmanager_webhook"
    call_command("ensure_webhook_secret", file=str(path))
    first = path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    call_command("ensure_webhook_secret", file=str(path))
    assert path.read_text() == first  # still registered: kept, not rotated

    path.write_text("amw_not-a-registered-secret\n")
    path.chmod(0o640)
    call_command("ensure_webhook_secret", file=str(path))
    second = path.read_text()
    assert second != first and second.startswith("amw_")
    assert oct(path.stat().st_mode & 0o777) == "0o640"  # rewritten in place: mode kept
    assert WebhookSecret.objects.filter(name="alertmanager").count() == 1  # the lost one was replaced
