#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/browser/, marker `browser`).
# Idempotent and quiet: does nothing when /usr/bin/chromium exists. Playwright drives this binary
# (executable_path="/usr/bin/chromium"); we never download Playwright's own browser builds.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# apt-get update only when the package lists have never been fetched (fresh containers).
if ! apt-cache show chromium >/dev/null 2>&1; then
    $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
