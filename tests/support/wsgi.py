"""Requests through `controlplane.wsgi.application`, the app the web server serves: the WSGI fast paths in
front of Django's handler, then the whole stack. Django's test client starts at the handler and so
never sees the fast paths.

`WsgiClient` speaks the part of DRF's APIClient the API tests use (`post`, `generic`, `get`;
`format="json"`) and answers with `WsgiResponse` (`status_code`, `headers`, `content`, `json()`),
and records whether Django's handler answered (`handled_by_django`)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class WsgiResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes
    handled_by_django: bool = False

    def json(self) -> Any:
        return json.loads(self.content)


@contextmanager
def _like_the_test_client() -> Iterator[None]:
    """Django's test client keeps the test's transaction: it disconnects close_old_connections from
    the request signals (else the handler would close the connection a test runs in)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@dataclass
class WsgiClient:
    headers: dict[str, str] = field(default_factory=dict)

    def credentials(self, **environ: str) -> None:
        self.headers.update(environ)

    def post(self, path: str, data: Any = None, format: str = "json", **environ: str) -> WsgiResponse:
        body = data if isinstance(data, bytes | str) else json.dumps(data)
        return self.generic("POST", path, data=body, content_type="application/json", **environ)

    def get(self, path: str, **environ: str) -> WsgiResponse:
        return self.generic("GET", path, **environ)

    def generic(
        self, method: str, path: str, data: bytes | str = b"", content_type: str = "", **environ: str
    ) -> WsgiResponse:
        from controlplane import wsgi

        body = data.encode() if isinstance(data, str) else data
        path, _, query = path.partition("?")
        env: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "testserver",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if body or method == "POST":
            env["CONTENT_LENGTH"] = str(len(body))
        if content_type:
            env["CONTENT_TYPE"] = content_type
        env.update(self.headers)
        env.update(environ)
        answered: list[tuple[str, list[tuple[str, str]]]] = []
        django_called = [False]
        # the innermost wrapper's app is Django's handler: record whether a request reaches it
        wrapper = wsgi.application
        while hasattr(wrapper.app, "app"):
            wrapper = wrapper.app
        handler = wrapper.app

        def django(environ: dict[str, Any], start_response: Any) -> Any:
            django_called[0] = True
            return handler(environ, start_response)

        with _like_the_test_client():
            wrapper.app = django
            try:
                chunks = wsgi.application(
                    env, lambda status, headers, exc_info=None: answered.append((status, headers))
                )
                content = b"".join(chunks)
                if hasattr(chunks, "close"):
                    chunks.close()
            finally:
                wrapper.app = handler
        status, headers = answered[0]
        return WsgiResponse(int(status.split()[0]), dict(headers), content, django_called[0])
