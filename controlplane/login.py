"""Password logins (`/login/` and `/admin/login/`) with a limit on failed attempts.

A browser that has not signed in to an account before is limited per client address and per
account (THROTTLE_LOGIN each): one address cannot try many passwords, and many addresses cannot
try many passwords on one account. A successful sign-in leaves a signed device cookie naming the
account; a browser presenting it for that account is counted on its own, so a guesser hammering
the account (or sharing the user's address) never locks its owner out of a browser they used
before. Throttled attempts are refused before the password is checked: the answer says nothing
about it.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import views as auth_views
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.response import TemplateResponse

from controlplane.throttling import FailureLimiter, client_ip

DEVICE_COOKIE = "cp_device"
DEVICE_MAX_AGE_S = 180 * 86400
_DEVICE_SALT = "controlplane.login.device"
THROTTLED_MESSAGE = "Too many failed attempts. Wait a minute and try again."

_failures = FailureLimiter("login")

View = Callable[..., HttpResponse]


def _username(request: HttpRequest) -> str:
    return str(request.POST.get("username", "")).strip()[:150].lower()


def _device(request: HttpRequest, username: str) -> str | None:
    """The device id of a browser that signed in to `username` before, else None."""
    raw = request.COOKIES.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        value = signing.loads(raw, salt=_DEVICE_SALT, max_age=DEVICE_MAX_AGE_S)
    except signing.BadSignature:
        return None
    if (
        not isinstance(value, dict)
        or value.get("user") != username
        or not isinstance(value.get("device"), str)
    ):
        return None
    return value["device"]


def failure_keys(request: HttpRequest, username: str) -> list[str]:
    """The counters an attempt is judged by and a failure is added to."""
    device = _device(request, username)
    if device is not None:
        return [f"device:{device}"]
    return [f"login-ip:{client_ip(request)}", f"login-user:{username}"]


def _signed_in(request: HttpRequest, response: HttpResponse, username: str) -> bool:
    user = getattr(request, "user", None)
    return (
        response.status_code in (301, 302, 303)
        and user is not None
        and user.is_authenticated
        and user.get_username().lower() == username
    )


def limited_login(view: View, throttled: Callable[[HttpRequest], HttpResponse]) -> View:
    """Wrap a login view: refuse POSTs over the failure limit (429 from `throttled`), count failed
    ones, and mark the browser as a known device of the account on success."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        username = _username(request)
        keys = failure_keys(request, username)
        waits = [w for w in (_failures.retry_after(key) for key in keys) if w is not None]
        if waits:
            response = throttled(request)
            response.status_code = 429
            response["Retry-After"] = str(int(max(waits)))
            return response
        response = view(request, *args, **kwargs)
        if _signed_in(request, response, username):
            device = (
                keys[0].removeprefix("device:") if keys[0].startswith("device:") else secrets.token_hex(16)
            )
            response.set_cookie(
                DEVICE_COOKIE,
                signing.dumps({"user": username, "device": device}, salt=_DEVICE_SALT),
                max_age=DEVICE_MAX_AGE_S,
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        else:  # the form was redisplayed: wrong credentials (or not staff, on the admin site)
            for key in keys:
                _failures.record(key)
        return response

    return wrapped


def _login_throttled(request: HttpRequest) -> HttpResponse:
    return render(
        request, "login.html", {"throttled": True, "form": auth_views.LoginView.form_class(request)}
    )


def _admin_throttled(request: HttpRequest) -> HttpResponse:
    from django.contrib.admin.forms import AdminAuthenticationForm

    messages.error(request, THROTTLED_MESSAGE)
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
        "form": AdminAuthenticationForm(request),
        "next": request.POST.get("next", ""),
    }
    return TemplateResponse(request, "admin/login.html", context).render()


class LoginView(auth_views.LoginView):
    template_name = "login.html"


login_view = limited_login(LoginView.as_view(), _login_throttled)


# The admin site's own login page, behind the same limits.
admin_login_view = limited_login(admin.site.login, _admin_throttled)
