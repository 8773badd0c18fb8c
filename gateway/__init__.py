"""The reference inference gateway: a small process that runs a routing policy and cache config
on simulated traffic, exposes the telemetry contract, and takes config from the control plane.

No Django and no database: it imports only the pure cores (routing.policy, routing.fleet.bundle,
controlplane.lib.signing, slo.contract). Run it with `python -m gateway --config gateway.toml`.
"""
