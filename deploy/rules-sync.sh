#!/bin/sh
# Keep Prometheus's SLO rules in step with the control plane: every RULES_SYNC_INTERVAL_S seconds,
# export the rules (manage.py export_prometheus_rules), and when they changed, replace the rule file
# atomically and ask Prometheus to reload (POST /-/reload; it needs --web.enable-lifecycle).
# Prometheus refuses a bad file and keeps the rules it had; the failure is logged here and retried.
# The rule file's modification time is touched on every successful export: the healthcheck reads it.
set -u
RULES_DIR="${RULES_DIR:-/rules}"
RULES_FILE="$RULES_DIR/slo.rules.yml"
PROMETHEUS_URL="${PROMETHEUS_URL:-http://prometheus:9090}"
INTERVAL="${RULES_SYNC_INTERVAL_S:-60}"

reload() {
    python - "$PROMETHEUS_URL" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/-/reload", method="POST"), timeout=10)
except Exception as exc:  # the next change or the next round retries
    print(f"rules-sync: reload failed: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}

pending_reload=1
while true; do
    if python manage.py export_prometheus_rules > "$RULES_DIR/.slo.rules.yml.new"; then
        if [ -f "$RULES_FILE" ] && cmp -s "$RULES_DIR/.slo.rules.yml.new" "$RULES_FILE"; then
            rm -f "$RULES_DIR/.slo.rules.yml.new"
            touch "$RULES_FILE"
        else
            mv "$RULES_DIR/.slo.rules.yml.new" "$RULES_FILE"
            echo "rules-sync: rules changed, reloading Prometheus"
            pending_reload=1
        fi
        if [ "$pending_reload" = 1 ] && reload; then
            pending_reload=0
        fi
    else
        echo "rules-sync: export failed; Prometheus keeps its current rules" >&2
    fi
    sleep "$INTERVAL"
done
