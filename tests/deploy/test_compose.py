"""docker-compose.yml: accepted by docker-compose, its services wired as documented, the Prometheus and
Alertmanager configs it mounts accepted by promtool and amtool, and the pieces that make the loop
work run for real: the web service's environment answers Prometheus and Alertmanager at `web:8000`,
and rules-sync loads changed SLO rules into a real Prometheus without anyone reloading it by hand.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from django.core.management import call_command

from tests.deploy import stack
from tests.support.prometheus import PrometheusServer, require_prometheus

ONE_SHOT = ("secrets-init", "migrate", "bootstrap")
COMPOSE_INSTALL = "apt-get install docker-compose (scripts/install-deploy-tools.sh)"


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


# -- the file -------------------------------------------------------------------------------------------


def test_docker_compose_accepts_the_stack(tmp_path):
    binary = stack.require_binary("docker-compose", install=COMPOSE_INSTALL)
    result = subprocess.run(
        [binary, "-f", str(stack.COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=stack.REPO,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "cpcheck"},
    )
    assert result.returncode == 0, result.stderr
    rendered = subprocess.run(
        [binary, "-f", str(stack.COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        cwd=stack.REPO,
        check=True,
    ).stdout
    # What docker-compose resolved (anchors, merges) is what the file's readers see too.
    assert set(yaml.safe_load(rendered)["services"]) == set(stack.services())


def test_every_long_running_service_has_a_healthcheck_and_one_shots_gate_the_rest():
    services = stack.services()
    expected = {
        "postgres",
        "redis",
        "web",
        "worker",
        "beat",
        "rules-sync",
        "prometheus",
        "alertmanager",
        "gateway",
        *ONE_SHOT,
    }
    assert expected <= set(services)
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        assert "healthcheck" in service and service["healthcheck"]["test"], f"{name} has no healthcheck"
    # Everything that runs the app waits for the migrations to have finished.
    for name in ("web", "worker", "beat", "rules-sync", "bootstrap"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully" or (
            depends.get("bootstrap", {}).get("condition") == "service_completed_successfully"
        ), name
    assert services["migrate"]["depends_on"]["secrets-init"]["condition"] == "service_completed_successfully"
    for name in ("alertmanager", "gateway", "rules-sync"):
        assert services[name]["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"


def test_web_runs_the_one_web_command():
    """docker-compose.yml spells `controlplane.webserver.web_command()` exactly (granian, 2 workers)."""
    from controlplane.webserver import web_command

    assert stack.services()["web"]["command"] == web_command()


def test_exactly_one_beat():
    services = stack.services()
    beats = [name for name, s in services.items() if " beat" in command_text(s)]
    assert beats == ["beat"]
    assert services["beat"]["deploy"]["replicas"] == 1
    for name, service in services.items():  # no worker with an embedded beat
        text = command_text(service)
        assert not ("worker" in text and (" -B" in text or "--beat" in text)), name


def test_secrets_init_writes_each_secret_once_readable_only_by_who_needs_it(tmp_path):
    """The secrets-init script, run for real as root (as compose runs it) on tmp dirs."""
    if os.geteuid() != 0 and os.environ.get("CI") != "true":
        pytest.skip("secrets-init changes file owners: run as root")
    service = stack.services()["secrets-init"]
    assert service["user"] == "0:0" and service["command"][:2] == ["sh", "-ec"]
    secrets_dir, rules_dir = tmp_path / "secrets", tmp_path / "rules"
    secrets_dir.mkdir()
    rules_dir.mkdir()
    script = service["command"][2].replace("$$", "$")  # compose's escape for a literal $
    script = script.replace("/run/controlplane-secrets", str(secrets_dir)).replace("/rules", str(rules_dir))

    def run(**env: str) -> None:
        done = subprocess.run(
            ["sh", "-ec", script],
            env={"PATH": os.environ["PATH"], **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

    run(SECRET_KEY="", METRICS_TOKEN="chosen-metrics-token")
    key = (secrets_dir / "secret_key").read_text().strip()
    assert len(key) >= 32
    assert (secrets_dir / "metrics_token").read_text().strip() == "chosen-metrics-token"
    modes = {
        p.name: (p.stat().st_uid, p.stat().st_gid, oct(p.stat().st_mode & 0o777))
        for p in secrets_dir.iterdir()
    }
    assert modes == {
        "secret_key": (1000, 1000, "0o600"),
        "metrics_token": (1000, 65534, "0o640"),
        "alertmanager_webhook": (1000, 65534, "0o640"),
    }
    assert (rules_dir.stat().st_uid, rules_dir.stat().st_gid) == (1000, 1000)
    run(SECRET_KEY="", METRICS_TOKEN="another")  # a restart keeps what exists
    assert (secrets_dir / "secret_key").read_text().strip() == key
    assert (secrets_dir / "metrics_token").read_text().strip() == "chosen-metrics-token"


@pytest.mark.django_db(transaction=True)
def test_bootstrap_creates_the_admin_the_webhook_secret_and_the_demo_gateway_and_can_run_again(
    tmp_path, settings
):
    """deploy/bootstrap.sh run for real with the bootstrap service's environment (addresses and
    volume paths moved to tmp dirs), twice: the second run changes nothing."""
    import hashlib
    import tomllib

    from django.contrib.auth.models import User

    from routing.models.fleet import Gateway
    from routing.models.releases import WebhookSecret

    services = stack.services()
    assert ("./deploy/bootstrap.sh", "/usr/local/bin/bootstrap.sh") in stack.mounts("bootstrap")
    assert services["bootstrap"]["command"] == ["sh", "/usr/local/bin/bootstrap.sh"]
    gateway_command = command_text(services["gateway"])
    assert gateway_command.startswith("python -m gateway --config /data/gateways/edge-1/gateway.toml")
    assert ("appdata", "/data") in stack.mounts("gateway") and ("appdata", "/data") in stack.mounts(
        "bootstrap"
    )

    env = stack.local_env(stack.environment("bootstrap"), tmp_path)
    secrets_dir, gateways_dir = tmp_path / "secrets", tmp_path / "data" / "gateways"
    (secrets_dir / "alertmanager_webhook").write_text("")  # as secrets-init leaves it
    env.update(
        {
            "SECRETS_DIR": str(secrets_dir),
            "GATEWAYS_DIR": str(gateways_dir),
            "DEMO_DAYS": "1",
            "ADMIN_PASSWORD": "a-long-admin-password",
            "PATH": f"{Path(sys.executable).parent}:{env['PATH']}",
        }
    )

    def run() -> str:
        done = subprocess.run(
            ["sh", str(stack.REPO / "deploy/bootstrap.sh")],
            cwd=stack.REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    run()
    admin = User.objects.get(is_superuser=True)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]  # what the script used
    assert admin.check_password("a-long-admin-password")
    secret = (secrets_dir / "alertmanager_webhook").read_text().strip()
    assert (
        WebhookSecret.objects.get(name="alertmanager").secret_hash
        == hashlib.sha256(secret.encode()).hexdigest()
    )
    config_path = gateways_dir / "edge-1" / "gateway.toml"
    config = tomllib.loads(config_path.read_text())
    assert config["control_plane"]["url"] == "http://web:8000" and config["control_plane"]["push_telemetry"]
    pushes = dict(
        Gateway.objects.filter(name__in=["edge-1", "edge-2", "cloud-1"]).values_list("name", "push_url")
    )
    assert pushes == {"edge-1": "http://edge-1.gateways.internal:9101/config", "edge-2": "", "cloud-1": ""}
    assert "edge-1.gateways.internal" in services["gateway"]["networks"]["default"]["aliases"]

    before = config_path.read_text()
    run()  # every `docker-compose up` runs it again
    assert (secrets_dir / "alertmanager_webhook").read_text().strip() == secret
    assert config_path.read_text() == before  # the running gateway's keys were not rotated
    assert User.objects.filter(is_superuser=True).count() == 1


def test_secrets_reach_prometheus_and_alertmanager_through_the_shared_volume():
    """The files the configs read are the ones the app side writes, in the same named volume."""
    prometheus_cfg = yaml.safe_load((stack.REPO / "deploy/prometheus.yml").read_text())
    token_file = prometheus_cfg["scrape_configs"][0]["authorization"]["credentials_file"]
    alertmanager_cfg = yaml.safe_load((stack.REPO / "deploy/alertmanager.yml").read_text())
    hook = next(r for r in alertmanager_cfg["receivers"] if r["name"] == "controlplane-rollback")
    secret_file = hook["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"]
    web_env = stack.environment("web")

    def volume_of(service: str, path: str) -> tuple[str, str]:
        for source, target in stack.mounts(service):
            if path.startswith(target.rstrip("/") + "/"):
                return source, path[len(target.rstrip("/")) + 1 :]
        raise AssertionError(f"{path} is not mounted into {service}")

    assert volume_of("prometheus", token_file) == volume_of("web", web_env["METRICS_TOKEN_FILE"])
    assert volume_of("alertmanager", secret_file) == ("secrets", "alertmanager_webhook")
    assert volume_of("bootstrap", "/run/controlplane-secrets/alertmanager_webhook") == (
        "secrets",
        "alertmanager_webhook",
    )
    # Prometheus reads the rules rules-sync writes, and can be reloaded by it.
    assert volume_of("prometheus", "/etc/prometheus/rules/slo.rules.yml") == volume_of(
        "rules-sync", "/rules/slo.rules.yml"
    )
    assert prometheus_cfg["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert "--web.enable-lifecycle" in stack.services()["prometheus"]["command"]


# -- the configs it mounts ---------------------------------------------------------------------------


def exported_rules(slo_doc: dict[str, Any], users: dict[str, Any]) -> str:
    from slo.services import slo_create

    slo_create(actor=users["operator"], data=slo_doc)
    out = io.StringIO()
    call_command("export_prometheus_rules", stdout=out, stderr=io.StringIO())
    assert "SLOErrorBudgetBurn" in out.getvalue()
    return out.getvalue()


@pytest.mark.django_db
def test_the_mounted_prometheus_config_and_exported_rules_pass_promtool(tmp_path, service, slo_doc, users):
    _prometheus, promtool = require_prometheus()
    root = stack.mounted_tree(
        "prometheus",
        tmp_path,
        {"secrets": {"metrics_token": "token\n"}, "rules": {"slo.rules.yml": exported_rules(slo_doc, users)}},
    )
    config = root / "etc/prometheus/prometheus.yml"
    config.write_text(stack.relocate(config.read_text(), "prometheus", root))
    result = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "slo.rules.yml" in result.stdout and "SUCCESS" in result.stdout  # the rules were checked too


def test_the_mounted_alertmanager_config_passes_amtool_and_routes_only_pages_to_the_webhook(tmp_path):
    amtool = stack.require_binary(
        "amtool", "/usr/bin/amtool", install="apt-get install prometheus-alertmanager"
    )
    config = stack.REPO / "deploy/alertmanager.yml"
    result = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

    def receivers(*labels: str) -> str:
        routed = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={config}", *labels],
            capture_output=True,
            text=True,
        )
        return routed.stdout.strip()

    assert receivers("severity=page", "slo_service=shelf-vision") == "controlplane-rollback"
    assert receivers("severity=ticket", "slo_service=shelf-vision") == "default"


# -- the web service's environment, served for real ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_web_environment_answers_prometheus_and_alertmanager_at_web_8000(tmp_path):
    env = stack.local_env(stack.environment("web"), tmp_path)
    with stack.web_server(env, tmp_path) as base:
        # The web healthcheck's own request.
        health = stack.request(base, "/healthz", "127.0.0.1:8000")
        assert health.status_code == 200, health.text
        # Prometheus's scrape: Host web:8000, plain HTTP, the token from the mounted file.
        auth = {"Authorization": f"Bearer {stack.METRICS_TOKEN}"}
        scrape = stack.request(base, "/metrics", "web:8000", headers=auth)
        assert scrape.status_code == 200, scrape.text[:300]
        assert "controlplane_ingested_minute_samples_total" in scrape.text
        wrong = stack.request(base, "/metrics", "web:8000", headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401
        # Alertmanager's webhook call reaches the view (401 without the secret), not an HTTPS redirect.
        hook = stack.request(base, "/api/v1/alertmanager/webhook/", "web:8000", method="POST", json={})
        assert hook.status_code in (401, 403), hook.status_code
        # The gateway's config poll likewise.
        assert stack.request(base, "/api/v1/gateways/1/config", "web:8000").status_code in (401, 403, 404)
        # Everything else keeps the HTTPS redirect; unknown hosts are still refused.
        assert stack.request(base, "/", "web:8000").status_code == 301
        assert stack.request(base, "/metrics", "evil.example:8000").status_code == 400


# -- rules-sync against a real Prometheus ---------------------------------------------------------------


def _rule_names(url: str) -> set[tuple[str, str]]:
    groups = requests.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    return {(rule["name"], rule.get("labels", {}).get("slo_name", "")) for g in groups for rule in g["rules"]}


@pytest.mark.django_db(transaction=True)
def test_rules_sync_loads_changed_slo_rules_into_prometheus_without_a_manual_reload(
    tmp_path, service, slo_doc, users
):
    from slo.services import slo_create

    require_prometheus()
    root = stack.mounted_tree("prometheus", tmp_path / "mounts", {"secrets": {"metrics_token": "t\n"}})
    (tmp_path / "prom").mkdir()
    server = PrometheusServer(tmp_path / "prom", tmp_path / "prom-data")
    server.config.write_text(
        stack.relocate((root / "etc/prometheus/prometheus.yml").read_text(), "prometheus", root)
    )
    slo_create(actor=users["operator"], data=slo_doc)
    env = stack.local_env(stack.environment("rules-sync"), tmp_path)
    env.update(
        {
            "RULES_DIR": str(root / "etc/prometheus/rules"),
            "PROMETHEUS_URL": "",
            "RULES_SYNC_INTERVAL_S": "1",
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        }
    )
    assert ("./deploy/rules-sync.sh", "/usr/local/bin/rules-sync.sh") in stack.mounts("rules-sync")
    script = stack.REPO / "deploy/rules-sync.sh"
    sync = None
    try:
        server.start()
        env["PROMETHEUS_URL"] = server.url
        log = (tmp_path / "rules-sync.log").open("wb")
        sync = subprocess.Popen(
            ["sh", str(script)],
            cwd=stack.REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

        def wait_for_rules(slo_name: str) -> set[tuple[str, str]]:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                names = _rule_names(server.url)
                if ("SLOErrorBudgetBurnPage", slo_name) in names:
                    return names
                time.sleep(0.5)
            raise AssertionError(
                (tmp_path / "rules-sync.log").read_text() + server.log_path.read_text()[-2000:]
            )

        wait_for_rules(slo_doc["name"])
        # A new SLO: its rules appear in Prometheus on the next round, nobody reloads by hand.
        slo_create(
            actor=users["operator"],
            data={**slo_doc, "name": "edge-availability", "sli": {"kind": "availability"}},
        )
        names = wait_for_rules("edge-availability")
        assert ("SLOErrorBudgetBurnPage", slo_doc["name"]) in names
    finally:
        if sync is not None and sync.poll() is None:
            os.killpg(sync.pid, signal.SIGTERM)  # the script and its sleep: our own process group
            sync.wait(timeout=15)
        server.stop()
