"""Routing policies and cache configs as versioned documents: the Django side.

`validation` and `yamlio` are pure (no Django); `selectors` reads, `services` writes (each write
one transaction with its audit event), `simulation` joins the pure simulator to measured telemetry.
"""
