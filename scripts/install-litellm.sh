#!/usr/bin/env bash
# Install the LiteLLM proxy (pip `litellm[proxy]`, pinned) into its OWN virtualenv, var/litellm-venv,
# for the tests and the docs that drive a real LiteLLM proxy (docs/gateways/litellm.md). It is an outside
# server, like Prometheus: it never goes into the project's .venv (its dependency pins would fight ours).
# Idempotent and quiet: does nothing when the pinned version is already installed.
#
#   LITELLM_VENV   where to install (default: <repo>/var/litellm-venv)
#   the proxy is then: "$LITELLM_VENV/bin/litellm" --config FILE --host 127.0.0.1 --port PORT
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

LITELLM_VERSION="1.100.5"
VENV="${LITELLM_VENV:-$PWD/var/litellm-venv}"
STAMP="$VENV/.installed-litellm-$LITELLM_VERSION"

if [ -f "$STAMP" ] && [ -x "$VENV/bin/litellm" ]; then
    exit 0
fi

python=""
for candidate in python3.12 python3.11 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info < (3, 14)))' 2>/dev/null; then
        python="$candidate"; break
    fi
done
if [ -z "$python" ]; then echo "error: Python 3.10-3.13 is required for the LiteLLM proxy" >&2; exit 1; fi

echo "   installing litellm[proxy]==$LITELLM_VERSION into $VENV (a few minutes the first time)"
[ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet --progress-bar off "litellm[proxy]==$LITELLM_VERSION"
"$VENV/bin/litellm" --version >/dev/null 2>&1 || "$VENV/bin/python" -c 'import litellm.proxy.proxy_server'
touch "$STAMP"
