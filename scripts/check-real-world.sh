#!/usr/bin/env bash
# Import every OpenSLO file under ../shared/real-world/openslo (files other tools and the OpenSLO
# project wrote; kept outside the repository) and print, per file, what was imported or why it was
# refused. Exits non-zero only when a file crashes the importer or loses data silently (a value of
# the file found neither in the export nor in a reported warning). With DATABASE_URL set, each file
# is also imported through the catalog in a dry run (a crash there is what the API answers with 500).
# See slo/openslo/check.py; the inference-server templates are checked by slo/templates/check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
dir="${REAL_WORLD_DIR:-../shared/real-world}/openslo"
if [ ! -d "$dir" ]; then
  echo "error: $dir not found" >&2
  exit 2
fi
ensure_venv test >/dev/null
args=()
if [ -n "${DATABASE_URL:-}" ]; then
  # also through the catalog (a dry run: nothing stored), as the API imports them
  export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-controlplane.settings}"
  .venv/bin/python manage.py migrate --noinput >/dev/null
  args+=(--catalog)
fi
echo "== OpenSLO files in $dir"
.venv/bin/python -m slo.openslo.check "${args[@]}" "$dir"
# every inference-server template reads only metric and label names its project documents
echo "== inference-server templates against ${REAL_WORLD_DIR:-../shared/real-world}/inference-metrics"
.venv/bin/python -m slo.templates.check "${REAL_WORLD_DIR:-../shared/real-world}/inference-metrics"
