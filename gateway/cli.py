"""`python -m gateway --config gateway.toml [flags]`: flags override the file."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from gateway.config import ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gateway", description="Reference inference gateway")
    p.add_argument("--config", help="TOML file (sections gateway, control_plane, traffic, routes)")
    p.add_argument("--name")
    p.add_argument("--id", dest="gateway_id", type=int, help="the gateway's id in the control plane")
    p.add_argument("--service")
    p.add_argument("--service-class")
    p.add_argument("--tier", choices=["edge", "private_cloud", "public_cloud"])
    p.add_argument("--region")
    p.add_argument("--listen", help="host:port")
    p.add_argument("--state-dir")
    p.add_argument(
        "--signing-secret-file", help="file holding the push signing secret (or GATEWAY_SIGNING_SECRET)"
    )
    p.add_argument("--control-plane-url")
    p.add_argument("--token-file", help="file holding the gateway token (or GATEWAY_TOKEN)")
    p.add_argument("--poll-interval-s", type=float, help="0 disables polling")
    p.add_argument("--heartbeat-interval-s", type=float, help="0 disables heartbeats")
    p.add_argument("--push-telemetry", action="store_true", default=None)
    p.add_argument("--telemetry-interval-s", type=float)
    p.add_argument("--rps", type=float)
    p.add_argument("--tick-s", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--latency-slo-ms", type=float)
    p.add_argument(
        "--overload",
        action="store_true",
        default=None,
        help="report an overloaded device (or GATEWAY_OVERLOAD=1, or a file named overload in the state dir)",
    )
    p.add_argument("--log-level", default=os.environ.get("GATEWAY_LOG_LEVEL", "INFO"))
    return p


def _read(path: str | None) -> str | None:
    return Path(path).read_text().strip() if path else None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    overrides: dict[str, Any] = {
        "name": args.name,
        "gateway_id": args.gateway_id,
        "service": args.service,
        "service_class": args.service_class,
        "tier": args.tier,
        "region": args.region,
        "state_dir": args.state_dir,
        "control_plane_url": args.control_plane_url,
        "poll_interval_s": args.poll_interval_s,
        "heartbeat_interval_s": args.heartbeat_interval_s,
        "push_telemetry": args.push_telemetry,
        "telemetry_interval_s": args.telemetry_interval_s,
        "rps": args.rps,
        "tick_s": args.tick_s,
        "seed": args.seed,
        "latency_slo_ms": args.latency_slo_ms,
        "overload": args.overload,
        "signing_secret": _read(args.signing_secret_file),
        "token": _read(args.token_file),
    }
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        overrides["listen_host"], overrides["listen_port"] = host or "127.0.0.1", int(port)
    try:
        config = load_config(args.config, overrides)
    except (ConfigError, ValueError, TypeError) as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2

    # imported late: a config error should not pay for pydantic and numpy start-up
    from gateway.app import Gateway
    from gateway.server import make_server

    gateway = Gateway(config)
    server = make_server(gateway)
    logging.getLogger("gateway").info(
        "%s listening on %s:%s, revision %s (%s)",
        config.name,
        config.listen_host,
        server.server_address[1],
        gateway.active.revision,
        gateway.active.source,
    )

    def stop(signum: int, frame: Any) -> None:
        gateway.stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    gateway.start_loops()
    server.serve_forever()
    return 0
