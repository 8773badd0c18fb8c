"""The API reference page (Swagger UI at /api/v1/docs/).

It is a page for people: a visit without a session and without an API token is sent to the login
page (and back after it) instead of answering 401. With either, the view's own authentication and
role check decide (`SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]`), like the schema endpoint's.

Redoc is not offered: its bundle loads its logo from a CDN and starts its search worker from a blob:
URL, both of which our CSP refuses (console errors on every visit).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse


def login_for_people(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated and "HTTP_AUTHORIZATION" not in request.META:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped
