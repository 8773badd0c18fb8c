"""Login with a limit on failed attempts per username and per client address."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from controlplane.throttling import FailureLimiter, client_ip

_failures = FailureLimiter("login")


class LoginView(auth_views.LoginView):
    template_name = "login.html"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = str(request.POST.get("username", ""))[:150].lower()
        keys = [f"ip:{client_ip(request)}", f"user:{username}"]
        waits = [w for w in (_failures.retry_after(key) for key in keys) if w is not None]
        if waits:
            # Refused before the password is checked: the answer says nothing about it.
            response = render(request, "login.html", {"throttled": True, "form": self.get_form()}, status=429)
            response["Retry-After"] = str(int(max(waits)))
            return response
        response = super().post(request, *args, **kwargs)
        if response.status_code != 302:  # the form was redisplayed: wrong credentials
            for key in keys:
                _failures.record(key)
        return response
