#!/usr/bin/env bash
# Install and run the control plane with its embedded defaults (SQLite, filesystem
# broker, demo data, reference gateways). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv ""
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py ensure_admin
.venv/bin/python manage.py seed_demo
exec .venv/bin/python manage.py serve "$@"
