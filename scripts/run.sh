#!/usr/bin/env bash
# Install and run the control plane with its embedded defaults (SQLite, filesystem
# broker, demo data, reference gateways). Ctrl-C stops everything.
# Each step says what it is doing and how long the start has taken so far.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1  # progress lines appear as they happen, also through a pipe or a log
started=$SECONDS
step() { printf '== [%4ss] %s\n' "$((SECONDS - started))" "$*"; }
source scripts/_venv.sh
step "1/5 Python environment (.venv)"
ensure_venv ""
step "2/5 database: applying migrations"
.venv/bin/python manage.py migrate --noinput
step "3/5 admin user (created on the first start; its password is printed once)"
.venv/bin/python manage.py ensure_admin
step "4/5 demo data: services, SLOs, 21 days of telemetry and budget history (about a minute the first time)"
.venv/bin/python manage.py seed_demo
step "5/5 starting the web server, Celery worker and beat, and the demo gateways"
exec .venv/bin/python manage.py serve "$@"
