from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_reports_database_and_broker(db):
    response = Client().get("/healthz")
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] == "ok", body
    assert response.status_code == 200


def _manage(env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL")}
    env.update({"DATA_DIR": str(tmp_path)}, **env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_mode_refuses_a_missing_secret_key(tmp_path):
    result = _manage({"DEBUG": "false"}, tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "configuration error: SECRET_KEY (or SECRET_KEY_FILE) is required when DEBUG is off"
    )


def test_a_bad_boolean_stops_start_up_with_one_line(tmp_path):
    result = _manage({"DEBUG": "maybe"}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: DEBUG='maybe': expected a boolean (true/false)"
    ]


def test_a_secret_key_can_come_from_a_file(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("x" * 40)
    result = _manage(
        {"DEBUG": "false", "SECRET_KEY_FILE": str(secret), "ALLOWED_HOSTS": "example.org"}, tmp_path
    )
    assert result.returncode == 0, result.stderr


def test_a_bad_database_url_stops_start_up(tmp_path):
    result = _manage({"DATABASE_URL": "nosuchdb://x"}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: DATABASE_URL")
