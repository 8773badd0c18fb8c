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

source "$(dirname "${BASH_SOURCE[0]}")/_apt.sh"
apt_install_no_start prometheus prometheus-alertmanager

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
