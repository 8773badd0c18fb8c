#!/usr/bin/env bash
# Install the test dependencies and run the whole suite: ruff, the migration check, pytest.
# Uses DATABASE_URL / CELERY_BROKER_URL when set (CI sets them to the machine's PostgreSQL and Redis);
# otherwise starts a throwaway PostgreSQL cluster and Redis for the run (scripts/_services.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
source scripts/_services.sh
ensure_venv test
for installer in scripts/install-prometheus.sh scripts/install-chromium.sh scripts/install-deploy-tools.sh \
    scripts/install-litellm.sh; do
  [ -f "$installer" ] && bash "$installer"
done
export DATA_DIR="${DATA_DIR:-$PWD/var/test}"
services_start
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== architecture (import-linter: layers, a Django-free gateway, pure cores)"
.venv/bin/lint-imports
echo "== types (mypy over the pure cores)"
.venv/bin/mypy
echo "== migrations"
.venv/bin/python manage.py makemigrations --check --dry-run
echo "== pytest"
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
