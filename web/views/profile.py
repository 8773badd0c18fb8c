"""The profile page: the user's time zone for every page (the API stays in UTC)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from web.models import BROWSER_ZONE
from web.timezones import BROWSER_COOKIE, effective_zone, preferred_zone, save_zone, valid_zone


class TimeZoneForm(forms.Form):
    time_zone = forms.CharField(
        max_length=64,
        label="Time zone",
        help_text='"UTC", an IANA zone name such as Europe/Berlin, or "browser" for the zone your browser reports.',
    )

    def clean_time_zone(self) -> str:
        value = self.cleaned_data["time_zone"].strip()
        if not valid_zone(value):
            raise forms.ValidationError(f'"{value}" is not a known IANA time zone (e.g. UTC, Europe/Berlin).')
        return value


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """Show and change the user's time zone."""
    stored = preferred_zone(request.user)
    if request.method == "POST":
        form = TimeZoneForm(request.POST)
        if form.is_valid():
            save_zone(user=request.user, time_zone=form.cleaned_data["time_zone"])
            messages.success(request, f"Times are now shown in {form.cleaned_data['time_zone']}.")
            return redirect("dashboard:profile")
    else:
        form = TimeZoneForm(initial={"time_zone": stored})
    from web.timezones import zone_names

    return render(
        request,
        "web/profile.html",
        {
            "nav": "profile",
            "form": form,
            "stored": stored,
            "browser": BROWSER_ZONE,
            "effective": effective_zone(stored, request.COOKIES.get(BROWSER_COOKIE)),
            "zones": ("UTC", BROWSER_ZONE, *[z for z in zone_names() if z != "UTC"]),
        },
    )
