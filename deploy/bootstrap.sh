#!/bin/sh
# One-shot bootstrap of the compose stack (docker-compose.yml, service `bootstrap`); every step is
# idempotent, so it runs on every `docker-compose up`:
# - the admin user (password from ADMIN_PASSWORD, else printed once in this service's log);
# - the Alertmanager webhook secret, written into the shared secrets volume (kept while registered);
# - with DEMO_SEED=true (the default): the demo catalog and history, and, once, the demo gateways'
#   registration and configs. Compose runs `edge-1`, so it gets its in-network push address; the
#   other two demo gateways are left poll-only (no push address).
set -eu
SECRETS_DIR="${SECRETS_DIR:-/run/controlplane-secrets}"
GATEWAYS_DIR="${GATEWAYS_DIR:-/data/gateways}"
CONTROL_PLANE_URL="${CONTROL_PLANE_URL:-http://web:8000}"
# The demo gateway's name in the compose network (a network alias: push URLs need a dotted host name).
export DEMO_GATEWAY_PUSH_URL="${DEMO_GATEWAY_PUSH_URL:-http://edge-1.gateways.internal:9101/config}"

python manage.py ensure_admin
python manage.py ensure_webhook_secret --name alertmanager --file "$SECRETS_DIR/alertmanager_webhook"
if [ "${DEMO_SEED:-true}" = "true" ]; then
    python manage.py seed_demo --days "${DEMO_DAYS:-2}"
    # Registered once: registering again would rotate the keys the running gateway holds.
    if [ ! -f "$GATEWAYS_DIR/edge-1/gateway.toml" ]; then
        python manage.py seed_gateways --state-dir "$GATEWAYS_DIR" --control-plane-url "$CONTROL_PLANE_URL" \
            --push-telemetry
        python manage.py shell -c '
import os
from routing.fleet.services import gateway_update
from routing.models.fleet import Gateway
for gateway in Gateway.objects.filter(name__in=["edge-1", "edge-2", "cloud-1"]):
    url = os.environ["DEMO_GATEWAY_PUSH_URL"] if gateway.name == "edge-1" else ""
    gateway_update(actor="bootstrap", gateway_id=gateway.pk, data={"push_url": url})
'
    fi
fi
echo "bootstrap done"
