"""The compose stack as files: docker-compose.yml parsed, and a service's mounts laid out in a tmp dir.

`mounted_tree` recreates what a container sees at its mount targets (bind-mounted repository files
copied, named volumes filled with the files a test gives), so a config can be checked or run
locally with only its absolute paths moved under the tmp dir (`relocate`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def require_binary(name: str, *fallbacks: str, install: str) -> str:
    """The tool's path, or fail on CI (the install scripts must have run) / skip on a developer machine."""
    for candidate in (name, *fallbacks):
        found = shutil.which(candidate) or (
            candidate if os.path.isabs(candidate) and os.path.exists(candidate) else None
        )
        if found:
            return found
    msg = f"{name} not installed: {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def mounts(service: str) -> list[tuple[str, str]]:
    """(source, target) of a service's volumes: `./path` for repository files, else a volume name."""
    out = []
    for entry in services()[service].get("volumes", []):
        source, target = entry.split(":")[:2]
        out.append((source, target))
    return out


def mounted_tree(service: str, root: Path, volumes: dict[str, dict[str, str]] | None = None) -> Path:
    """Lay out the service's mounts under `root`: repository files copied to root/<target>, each named
    volume a directory holding the files `volumes[name]` gives (name -> {file name: content})."""
    volumes = volumes or {}
    for source, target in mounts(service):
        destination = root / target.lstrip("/")
        if source.startswith("./"):
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / source, destination)
        else:
            destination.mkdir(parents=True, exist_ok=True)
            for name, content in volumes.get(source, {}).items():
                (destination / name).write_text(content)
    return root


def relocate(text: str, service: str, root: Path) -> str:
    """The config text with every mount target's absolute path moved under `root` (nothing else)."""
    import re

    targets = sorted((target for _source, target in mounts(service)), key=len, reverse=True)
    # A target counts only as a whole path prefix: not inside a URL path or a longer path.
    pattern = re.compile(r"(?<![\w/.-])(" + "|".join(map(re.escape, targets)) + r")(?=/|[\s'\"]|$)", re.M)
    return pattern.sub(lambda m: str(root / m.group(1).lstrip("/")), text)


def environment(service: str) -> dict[str, str]:
    """The service's environment as compose would give it with no .env: `${X:-default}` -> default."""
    import re

    env = services()[service].get("environment", {})
    out = {}
    for key, value in env.items():
        text = str(value)
        text = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)
        text = text.replace("$$", "$")
        out[key] = text
    return out


def local_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A deployment's environment with only addresses and secret files moved to this machine: the
    test database (pytest-django's), this run's Redis, a tmp data dir and generated secret files."""
    from django.db import connection

    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    (secrets_dir / "secret_key").write_text("k" * 50)
    (secrets_dir / "metrics_token").write_text(METRICS_TOKEN + "\n")
    db = connection.settings_dict
    env = {key: value for key, value in env.items() if key not in ("SECRET_KEY", "METRICS_TOKEN")}
    env.update(
        {
            "SECRET_KEY_FILE": str(secrets_dir / "secret_key"),
            "METRICS_TOKEN_FILE": str(secrets_dir / "metrics_token"),
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
            "CACHE_URL": os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/0"),
            "DATA_DIR": str(tmp_path / "data"),
        }
    )
    return {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}, **env}


METRICS_TOKEN = "metrics-token-for-the-test"


@contextmanager
def web_server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """The web command (`controlplane.webserver.web_command`, as the YAML files run it) with `env`
    on a free port, one worker; yields its base URL once /healthz answers."""
    import subprocess
    import sys
    import time

    import requests

    from tests.support.prometheus import free_port

    port = free_port()
    from controlplane.webserver import web_command

    binary = str(Path(sys.executable).with_name("granian"))
    log_path = tmp_path / "web.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            web_command(host="127.0.0.1", port=port, workers=1, binary=binary),
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=15)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def request(base: str, path: str, host: str, method: str = "GET", **kw: Any) -> Any:
    """One request with an explicit Host header, redirects not followed."""
    import requests

    headers = {"Host": host, **kw.pop("headers", {})}
    return requests.request(method, f"{base}{path}", headers=headers, allow_redirects=False, timeout=10, **kw)
