"""Wrap the control plane's exported Prometheus rule file in a PrometheusRule (Prometheus Operator).

    python manage.py export_prometheus_rules | python deploy/prometheusrule.py --namespace monitoring \
        --label release=prometheus > slo-rules.yaml            # then: kubectl apply -f slo-rules.yaml
    python manage.py export_prometheus_rules > /tmp/rules.yml && \
        python deploy/prometheusrule.py --apply < /tmp/rules.yml  # in a pod (the rules CronJob)

`--apply` does a server-side apply of the object with the pod's service account (it needs get,
create and patch on prometheusrules in its namespace: deploy/kubernetes/rules-cronjob.yaml). The
rules are copied unchanged: same groups, alerts and labels as the file Prometheus would load.
Standard library, PyYAML and requests only: no Django.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
FIELD_MANAGER = "controlplane-rules"


def manifest(rule_file: str, *, name: str, namespace: str | None, labels: dict[str, str]) -> dict[str, Any]:
    """The PrometheusRule carrying the rule file's groups (an empty list when it has none)."""
    parsed = yaml.safe_load(rule_file) or {}
    if not isinstance(parsed, dict) or not isinstance(parsed.get("groups", []), list):
        raise ValueError("not a Prometheus rule file: expected a mapping with a `groups` list")
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/part-of": "controlplane", **labels},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": parsed.get("groups") or []},
    }


def apply(obj: dict[str, Any], *, api_url: str, token: str, ca: str | bool) -> int:
    """Server-side apply; returns the HTTP status (2xx on success)."""
    import requests

    meta = obj["metadata"]
    url = (
        f"{api_url.rstrip('/')}/apis/monitoring.coreos.com/v1/namespaces/{meta['namespace']}"
        f"/prometheusrules/{meta['name']}"
    )
    response = requests.patch(
        url,
        params={"fieldManager": FIELD_MANAGER, "force": "true"},
        data=json.dumps(obj),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/apply-patch+yaml"},
        verify=ca,
        timeout=30,
    )
    if response.status_code >= 300:
        print(f"apply failed: HTTP {response.status_code}: {response.text[:500]}", file=sys.stderr)
    return response.status_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="controlplane-slo-rules")
    parser.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE"))
    parser.add_argument(
        "--label", action="append", default=[], help="key=value, e.g. the operator's ruleSelector"
    )
    parser.add_argument(
        "--apply", action="store_true", help="server-side apply with the pod's service account"
    )
    parser.add_argument("--api-url", default="https://kubernetes.default.svc")
    parser.add_argument("--token-file", default=str(SERVICE_ACCOUNT / "token"))
    parser.add_argument("--ca-file", default=str(SERVICE_ACCOUNT / "ca.crt"))
    args = parser.parse_args(argv)
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--label {item!r}: expected key=value")
        labels[key] = value
    try:
        obj = manifest(sys.stdin.read(), name=args.name, namespace=args.namespace, labels=labels)
    except (ValueError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.apply:
        sys.stdout.write(yaml.safe_dump(obj, sort_keys=False))
        return 0
    if not args.namespace:
        parser.error("--apply needs --namespace (or POD_NAMESPACE)")
    ca: str | bool = args.ca_file if Path(args.ca_file).exists() else True
    status = apply(obj, api_url=args.api_url, token=Path(args.token_file).read_text().strip(), ca=ca)
    return 0 if status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
