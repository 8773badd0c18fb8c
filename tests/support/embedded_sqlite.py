"""Run code against the embedded mode's SQLite database, in a subprocess (a test session is bound to
PostgreSQL): a fresh database under `tmp_path` is migrated, then `script` runs after `SETUP` (Django
set up on it, `json` imported, the shelf-vision service and its availability SLO `avail` created); the
script prints its result as JSON on its last line of output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

SETUP = """
import json
import django
django.setup()
from django.db import connection
from slo.services import service_create, slo_create

assert connection.vendor == "sqlite"
service_create(actor=None, data={"name": "shelf-vision", "service_class": "interactive", "tiers": ["edge"]})
base = {"service": "shelf-vision", "tier": "edge", "objective": 99, "window": {"type": "rolling", "days": 28}}
avail = slo_create(actor=None, data={**base, "name": "avail", "sli": {"kind": "availability"}})
"""


def run_on_sqlite(tmp_path: Path, script: str) -> Any:
    """Migrate a new SQLite database, run `SETUP` and `script` on it, and return its last output line as JSON."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
        "DATA_DIR": str(tmp_path),
        "CELERY_BROKER_URL": "memory://",
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    done = subprocess.run(
        [sys.executable, "-c", SETUP + script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
