#!/usr/bin/env bash
# Install the tools the deployment tests need: Debian's `docker-compose` (only `docker-compose config`
# is used: it validates docker-compose.yml without a Docker daemon) and `victoria-metrics` (a real
# Prometheus-compatible long-term store for the pull tests). Idempotent and quiet: does nothing when
# both are installed. No service is started (policy-rc.d denies it during the install).
set -euo pipefail

if command -v docker-compose >/dev/null 2>&1 && [ -x /usr/bin/victoria-metrics ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
policy_created=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    policy_created=1
fi
cleanup() {
    if [ "$policy_created" = "1" ]; then
        $SUDO rm -f /usr/sbin/policy-rc.d
    fi
}
trap cleanup EXIT

$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends docker-compose victoria-metrics >/dev/null

docker-compose version >/dev/null
/usr/bin/victoria-metrics -version >/dev/null 2>&1
