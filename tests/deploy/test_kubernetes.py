"""deploy/kubernetes: rendered like `kubectl kustomize` would (a YAML walk over the fields the
kustomization uses: no kubectl here), built-in kinds validated strictly against the Kubernetes
OpenAPI schemas shipped by `kubernetes-validate` (offline), and the three CRDs (KEDA ScaledObject,
ServiceMonitor, PrometheusRule), which have no schema there, checked on the fields we rely on and on
what they point at. The web pod's environment is served for real to show the readiness probe and
the ServiceMonitor's scrape succeed with the Host header they send (the pod IP).
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import stack

KUBE_DIR = stack.REPO / "deploy" / "kubernetes"
SCHEMA_VERSIONS = ("1.30.0", "1.33.0")  # oldest and a recent supported Kubernetes
CRDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "namespace", "resources", "images"}
SECRET_NAME = "controlplane"
SENSITIVE_ENV = {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "METRICS_TOKEN"}
# The keys the KEDA redis scaler reads (keda.sh docs, "Redis Lists" scaler).
KEDA_REDIS_KEYS = {
    "address",
    "addressFromEnv",
    "host",
    "hostFromEnv",
    "port",
    "portFromEnv",
    "listName",
    "listLength",
    "activationListLength",
    "databaseIndex",
    "enableTLS",
    "unsafeSsl",
    "usernameFromEnv",
    "passwordFromEnv",
}


# -- rendering ------------------------------------------------------------------------------------------


def pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    kind = obj["kind"]
    if kind in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        return [obj["spec"]["template"]["spec"]]
    if kind == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    return []


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for spec in pod_specs(obj) for c in (*spec.get("initContainers", []), *spec["containers"])]


def render() -> list[dict[str, Any]]:
    """What `kubectl kustomize deploy/kubernetes` gives for the fields this kustomization uses."""
    kustomization = yaml.safe_load((KUBE_DIR / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KUSTOMIZATION_FIELDS
    assert not unknown, f"the test's renderer does not implement {unknown}: extend render()"
    namespace = kustomization.get("namespace")
    images = {i["name"]: i for i in kustomization.get("images", [])}
    out = []
    for resource in kustomization["resources"]:
        for obj in yaml.safe_load_all((KUBE_DIR / resource).read_text()):
            if not obj:
                continue
            if namespace and obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
            if namespace and obj["kind"] == "RoleBinding":
                for subject in obj["subjects"]:
                    if subject["kind"] == "ServiceAccount":
                        subject["namespace"] = namespace
            for container in containers(obj):
                name, _, tag = container["image"].partition(":")
                if name in images:
                    image = images[name]
                    container["image"] = (
                        f"{image.get('newName', name)}:{image.get('newTag', tag or 'latest')}"
                    )
            out.append(obj)
    return out


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render()


def container_env(container: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, Any]:
    """name -> value or valueFrom, envFrom ConfigMaps first (as the kubelet does)."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        env.update(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    return env


# -- schemas ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_builtin_object_passes_strict_schema_validation_offline(objects, version, monkeypatch):
    import kubernetes_validate

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("schema validation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    builtin = [o for o in objects if (o["apiVersion"], o["kind"]) not in CRDS]
    assert {o["kind"] for o in builtin} >= {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "Job",
        "CronJob",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    }
    for obj in builtin:
        kubernetes_validate.validate(obj, version, strict=True)


def test_schema_validation_catches_a_misspelt_field(objects):
    """The check above can fail: a typo in a probe is refused."""
    import kubernetes_validate

    web = json.loads(json.dumps(find(objects, "Deployment", "controlplane-web")))
    web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpget"] = {"path": "/healthz"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, SCHEMA_VERSIONS[-1], strict=True)


def test_only_the_three_crds_go_without_a_schema(objects):
    kinds = {(o["apiVersion"], o["kind"]) for o in objects}
    # ScaledObject and ServiceMonitor are applied as they are; the PrometheusRule is generated from
    # the exported rules (deploy/prometheusrule.py, run by the rules CronJob). All three are checked below.
    assert kinds & CRDS == CRDS - {("monitoring.coreos.com/v1", "PrometheusRule")}


# -- what the manifests promise --------------------------------------------------------------------------


def test_secrets_are_referenced_never_stored(objects):
    assert not [o for o in objects if o["kind"] == "Secret"]
    pods = [o for o in objects if pod_specs(o)]
    assert pods
    for obj in pods:
        for container in containers(obj):
            for item in container.get("env", []):
                if item["name"] in SENSITIVE_ENV:
                    assert set(item) == {"name", "valueFrom"}, f"{obj['metadata']['name']}: {item['name']}"
                    assert item["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME
    text = "\n".join(p.read_text() for p in KUBE_DIR.glob("*.yaml"))
    assert not re.search(r"(amw_|gw_|whsec_)[A-Za-z0-9]|postgres(ql)?://[^\s]*:[^\s]*@", text)


def test_env_references_are_defined_before_use(objects):
    for obj in objects:
        for container in containers(obj):
            defined = set()
            for source in container.get("envFrom", []):
                defined |= set(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
            for item in container.get("env", []):
                for ref in re.findall(r"\$\(([A-Z_][A-Z0-9_]*)\)", item.get("value", "")):
                    assert ref in defined, (
                        f"{obj['metadata']['name']}/{container['name']}: $({ref}) undefined"
                    )
                defined.add(item["name"])


def test_web_is_ready_on_healthz_and_everything_waits_for_the_migrate_job(objects):
    web = find(objects, "Deployment", "controlplane-web")
    spec = web["spec"]["template"]["spec"]
    container = spec["containers"][0]
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    assert probe["port"] in [p["name"] for p in container["ports"]]
    env = container_env(container, objects)
    assert "$(POD_IP)" in env["ALLOWED_HOSTS"]  # the probe's (and the scrape's) Host header
    assert any(re.match(p, "healthz") for p in env["SECURE_REDIRECT_EXEMPT"].split(","))
    job = find(objects, "Job", "controlplane-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == ["migrate", "--noinput"]
    for name in ("controlplane-web", "controlplane-worker", "controlplane-beat"):
        inits = find(objects, "Deployment", name)["spec"]["template"]["spec"]["initContainers"]
        assert any("migrate --check" in " ".join(c["command"]) for c in inits), name


def test_web_runs_the_one_web_command(objects):
    """deploy/kubernetes/web.yaml spells `controlplane.webserver.web_command()` exactly."""
    from controlplane.webserver import web_command

    (web,) = pod_specs(find(objects, "Deployment", "controlplane-web"))[0]["containers"]
    assert web["command"] == web_command()


def test_exactly_one_beat_replaced_never_rolled(objects):
    beat = find(objects, "Deployment", "controlplane-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    beats = [o["metadata"]["name"] for o in objects for c in containers(o) if "beat" in c.get("command", [])]
    assert beats == ["controlplane-beat"]
    assert not [
        o
        for o in objects
        if o["kind"] == "ScaledObject" and o["spec"]["scaleTargetRef"]["name"] == "controlplane-beat"
    ]


def test_the_worker_scales_on_the_celery_queue_length(objects):
    from controlplane.celery import app

    scaled = find(objects, "ScaledObject", "controlplane-worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    target = find(objects, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    assert any(c["command"][:4] == ["celery", "-A", "controlplane", "worker"] for c in containers(target))
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    metadata = trigger["metadata"]
    assert set(metadata) <= KEDA_REDIS_KEYS, set(metadata) - KEDA_REDIS_KEYS
    assert all(isinstance(v, str) for v in metadata.values())  # KEDA metadata is map[string]string
    assert metadata["listName"] == app.conf.task_default_queue  # the list Celery pushes tasks onto
    assert int(metadata["listLength"]) > 0
    worker = target["spec"]["template"]["spec"]["containers"][0]
    assert metadata["addressFromEnv"] in container_env(worker, objects)


def test_the_servicemonitor_scrapes_the_web_service_with_the_metrics_token(objects):
    from django.urls import resolve

    monitor = find(objects, "ServiceMonitor", "controlplane")
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = [
        o
        for o in objects
        if o["kind"] == "Service" and selector.items() <= o["metadata"].get("labels", {}).items()
    ]
    assert [s["metadata"]["name"] for s in services] == ["controlplane-web"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in [p["name"] for p in services[0]["spec"]["ports"]]
    assert resolve(endpoint["path"]).func.__name__ == "metrics_view"
    credentials = endpoint["authorization"]["credentials"]
    web = find(objects, "Deployment", "controlplane-web")["spec"]["template"]["spec"]["containers"][0]
    token = container_env(web, objects)["METRICS_TOKEN"]["secretKeyRef"]
    assert (credentials["name"], credentials["key"]) == (token["name"], token["key"])


def test_the_rules_cronjob_may_write_prometheusrules_and_nothing_else(objects):
    cron = find(objects, "CronJob", "controlplane-rules")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    script = " ".join(pod["containers"][0]["command"])
    assert "manage.py export_prometheus_rules" in script and "deploy/prometheusrule.py --apply" in script
    assert (
        "COPY deploy/prometheusrule.py ./deploy/prometheusrule.py" in (stack.REPO / "Dockerfile").read_text()
    )
    role = find(objects, "Role", "controlplane-rules")
    assert role["rules"] == [
        {
            "apiGroups": ["monitoring.coreos.com"],
            "resources": ["prometheusrules"],
            "verbs": ["get", "create", "patch"],
        }
    ]
    binding = find(objects, "RoleBinding", "controlplane-rules")
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
    assert binding["subjects"][0]["namespace"] == cron["metadata"]["namespace"]
    for obj in objects:  # only this pod gets an API token
        for spec in pod_specs(obj):
            if spec is not pod:
                assert spec.get("automountServiceAccountToken") is False, obj["metadata"]["name"]


# -- the PrometheusRule carries the exported rules ------------------------------------------------------


def run_prometheusrule(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(stack.REPO / "deploy/prometheusrule.py"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=stack.REPO,
        timeout=60,
    )


@pytest.fixture
def exported(db, service, slo_doc, users) -> str:
    import io

    from django.core.management import call_command

    from slo.services import slo_create

    slo_create(actor=users["operator"], data=slo_doc)
    out = io.StringIO()
    call_command("export_prometheus_rules", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_prometheusrule_carries_the_exported_rules_and_promtool_accepts_them(exported, tmp_path):
    from tests.support.prometheus import require_prometheus

    _prometheus, promtool = require_prometheus()
    result = run_prometheusrule(exported, "--namespace", "controlplane", "--label", "release=prometheus")
    assert result.returncode == 0, result.stderr
    rule = yaml.safe_load(result.stdout)
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert rule["metadata"]["namespace"] == "controlplane"
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert rule["spec"]["groups"] == yaml.safe_load(exported)["groups"]  # unchanged
    for group in rule["spec"]["groups"]:  # the CRD's fields: groups of named rules, each record or alert
        assert isinstance(group["name"], str) and group["rules"]
        for item in group["rules"]:
            assert ("record" in item) != ("alert" in item) and isinstance(item["expr"], str)
    rules_file = tmp_path / "from-prometheusrule.yml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    checked = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SLOErrorBudgetBurnPage" in result.stdout


def test_prometheusrule_refuses_what_is_not_a_rule_file():
    result = run_prometheusrule("- just\n- a list\n", "--namespace", "x")
    assert result.returncode == 2 and "not a Prometheus rule file" in result.stderr


class _FakeApiServer(http.server.BaseHTTPRequestHandler):
    """The Kubernetes API server (the outside edge): records the request, answers like an apply."""

    received: list[dict[str, Any]] = []

    def do_PATCH(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_prometheusrule_apply_is_a_server_side_apply_with_the_service_account_token(exported, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeApiServer)
    _FakeApiServer.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token = tmp_path / "token"
    token.write_text("sa-token\n")
    try:
        result = run_prometheusrule(
            exported,
            "--apply",
            "--namespace",
            "controlplane",
            "--label",
            "release=prom",
            "--api-url",
            f"http://127.0.0.1:{server.server_port}",
            "--token-file",
            str(token),
            "--ca-file",
            str(tmp_path / "none"),
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    (request,) = _FakeApiServer.received
    assert request["path"].startswith(
        "/apis/monitoring.coreos.com/v1/namespaces/controlplane/prometheusrules/controlplane-slo-rules?"
    )
    assert "fieldManager=controlplane-rules" in request["path"] and "force=true" in request["path"]
    assert request["headers"]["Content-Type"] == "application/apply-patch+yaml"
    assert request["headers"]["Authorization"] == "Bearer sa-token"
    assert request["body"]["spec"]["groups"] == yaml.safe_load(exported)["groups"]


# -- the web pod's environment, served for real ----------------------------------------------------------


def pod_env(container: dict[str, Any], objects: list[dict[str, Any]], pod_ip: str) -> dict[str, str]:
    """The container's environment as the kubelet would build it, secrets left to stack.local_env."""
    env: dict[str, str] = {}
    for name, value in container_env(container, objects).items():
        if isinstance(value, dict):
            if "fieldRef" in value and value["fieldRef"]["fieldPath"] == "status.podIP":
                env[name] = pod_ip
            continue
        env[name] = re.sub(r"\$\(([A-Z_][A-Z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)
    return env


@pytest.mark.django_db(transaction=True)
def test_the_readiness_probe_and_the_scrape_succeed_with_the_pod_ip_as_host(objects, tmp_path):
    web = find(objects, "Deployment", "controlplane-web")["spec"]["template"]["spec"]["containers"][0]
    pod_ip = "10.42.0.17"
    env = pod_env(web, objects, pod_ip)
    env["DATA_DIR"] = str(tmp_path / "data")
    port = web["ports"][0]["containerPort"]
    with stack.web_server(stack.local_env(env, tmp_path), tmp_path) as base:
        probe = stack.request(base, web["readinessProbe"]["httpGet"]["path"], f"{pod_ip}:{port}")
        assert probe.status_code == 200, probe.text  # not 400 DisallowedHost, not a 301 to https
        scrape = stack.request(
            base, "/metrics", f"{pod_ip}:{port}", headers={"Authorization": f"Bearer {stack.METRICS_TOKEN}"}
        )
        assert scrape.status_code == 200, scrape.text[:300]
        # Through the ingress (X-Forwarded-Proto) the public host is served; plain HTTP is redirected.
        public = env["ALLOWED_HOSTS_EXTRA"].split(",")[0]
        assert stack.request(base, "/", public, headers={"X-Forwarded-Proto": "https"}).status_code in (
            200,
            302,
        )
        assert stack.request(base, "/", public).status_code == 301


def test_rendered_manifests_are_what_the_docs_show(objects):
    """docs/deploy.md names the Secret's keys; they are exactly the ones the manifests read."""
    keys = {
        item["valueFrom"]["secretKeyRef"]["key"]
        for o in objects
        for c in containers(o)
        for item in c.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    docs = (stack.REPO / "docs/deploy.md").read_text()
    for key in keys:
        assert f"--from-literal={key}=" in docs, key
    assert Path(KUBE_DIR / "kustomization.yaml").exists()
