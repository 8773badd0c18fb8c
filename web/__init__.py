"""The browser UI: server-rendered pages over `slo` and `routing`, and the `serve` command.

The top floor of the layers (web -> routing -> slo -> controlplane): the only app that may import
both `slo` and `routing`; nothing below imports it.
"""
