"""The floor of a request in gunicorn: a WSGI app that answers every request 304 at once, reading
nothing (a first request without If-None-Match gets 200 and the ETag). `bench_fleet.py --app floor_app:application --mix poll` runs the fleet's polls against it,
so what a config poll costs beyond gunicorn's own accept, parse, answer and close is the difference."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if "HTTP_IF_NONE_MATCH" not in environ:  # the benchmark's first request fetches the ETag
        start_response("200 OK", [("ETag", '"rev-1"'), ("Content-Length", "2")])
        return [b"{}"]
    start_response("304 Not Modified", [("ETag", environ["HTTP_IF_NONE_MATCH"])])
    return []
