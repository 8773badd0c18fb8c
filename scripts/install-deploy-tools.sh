#!/usr/bin/env bash
# Install the tools the deployment tests need: Debian's `docker-compose` (only `docker-compose config`
# is used: it validates docker-compose.yml without a Docker daemon) and `victoria-metrics` (a real
# Prometheus-compatible long-term store for the pull tests). Idempotent and quiet: does nothing when
# both are installed. No service is started (policy-rc.d denies it during the install).
set -euo pipefail

if command -v docker-compose >/dev/null 2>&1 && [ -x /usr/bin/victoria-metrics ]; then
    exit 0
fi

source "$(dirname "${BASH_SOURCE[0]}")/_apt.sh"
apt_install_no_start docker-compose victoria-metrics

docker-compose version >/dev/null
/usr/bin/victoria-metrics -version >/dev/null 2>&1
