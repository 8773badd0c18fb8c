"""The web server command, defined once: granian serving `controlplane.wsgi` (its WSGI interface).

docker-compose.yml, deploy/kubernetes/web.yaml, `manage.py serve` (scripts/run.sh), the live test
servers and the fleet benchmark all run this command; `tests/deploy` checks that the YAML files
spell exactly what `web_command` returns, so a flag changed here is changed everywhere or fails.

Why granian and not gunicorn (measured, docs/scaling.md): gateways poll every 10 s and push every
60 s, so the web tier's own cost per request decides how many gateways a core carries. Granian parses
HTTP in Rust and keeps connections alive; gunicorn's sync workers parse in Python and close every
connection. On the 2-core machine, 10,000 gateways polling and pushing needed 1.40 server cores
with p99 3.4 s under gunicorn (benchmarks/results/fleet_gunicorn.json) and 1.22 cores with p99
15 / 34 ms under granian with this command (fleet.json).

- `--interface wsgi`: the Django app and its WSGI fast paths run unchanged.
- `--workers` processes x `--blocking-threads` threads each: the app's concurrency. A thread keeps
  its own database connection (Django's are per thread); the embedded SQLite mode runs one thread
  per worker, as gunicorn's sync workers did.
- `--http 1`: gateways and ingresses speak HTTP/1.1; HTTP/2 is not served (nothing tests it).
- `--no-ws`: no websockets.
- `--respawn-failed-workers`: a worker that dies is replaced (gunicorn's arbiter did this).
- `--access-log`: one line per request on stdout, as gunicorn's `--access-logfile -` did.

The body is not read before the app asks: an oversized push is refused from its Content-Length
before any of it is sent (tests/security/live/test_live_gateway_scope.py). Granian rewrites nothing from `X-Forwarded-*` headers; Django's
`SECURE_PROXY_SSL_HEADER` and `TRUSTED_PROXY_COUNT` alone decide scheme and client address (the
live probes in tests/security/live check both through this command).

Not carried over from gunicorn: its 120 s worker timeout. A request stuck past it holds one of its
worker's threads instead of having the worker killed; the waits we know of are bounded on their
own (database connect timeout, every outbound HTTP call has a timeout).
"""

from __future__ import annotations

WSGI_APP = "controlplane.wsgi:application"


def web_command(
    *,
    host: str = "0.0.0.0",
    port: int = 8000,
    workers: int = 2,
    threads: int = 4,
    access_log: bool = True,
    binary: str = "granian",
    app: str = WSGI_APP,
) -> list[str]:
    """The argv of the web server. Deployments pass their worker count; the rest is fixed here."""
    command = [
        binary,
        "--interface",
        "wsgi",
        "--http",
        "1",
        "--no-ws",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--backlog",
        "2048",
        "--respawn-failed-workers",
    ]
    if access_log:
        command.append("--access-log")
    return [*command, app]
