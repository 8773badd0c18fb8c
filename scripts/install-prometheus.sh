#!/usr/bin/env bash
# Install the Prometheus server and promtool (Debian's `prometheus`) and Alertmanager and amtool
# (Debian's `prometheus-alertmanager`), for the tests and benchmarks that need the real servers.
# Idempotent and quiet: does nothing when all four binaries exist.
#
# Debian's package ships a systemd unit and its postinst may try to start it on :9090. Tests never use
# that instance (they start their own on a free 127.0.0.1 port), and on machines without systemd the
# start is a no-op; we stop it anyway when we can, so nothing of ours keeps running on 9090.
set -euo pipefail

if [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] \
    && [ -x /usr/bin/prometheus-alertmanager ] && [ -x /usr/bin/amtool ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit code 101 tells invoke-rc.d "do not start services" during the install.
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
$SUDO apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null

# Belt and braces: if a service manager started it anyway, stop it (never by a broad process name).
for unit in prometheus prometheus-alertmanager; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
        $SUDO systemctl stop "$unit" || true
        $SUDO systemctl disable "$unit" >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        $SUDO service "$unit" stop >/dev/null 2>&1 || true
    fi
done

/usr/bin/prometheus --version >/dev/null 2>&1
/usr/bin/promtool --version >/dev/null 2>&1
/usr/bin/prometheus-alertmanager --version >/dev/null 2>&1
/usr/bin/amtool --version >/dev/null 2>&1
