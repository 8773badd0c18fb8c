"""Live pages: each page that refreshes in place has a JSON twin that answers the page's own figures.

The twin calls the page's view with the same request (same user, same role check, same query
string), so its figures are the page's by construction, and answers the inner HTML of every
element the template marks `data-live="NAME"`, plus the moment it was rendered. static/js/live.js
polls it and swaps those nodes; nothing else on the page changes.

An anonymous caller is redirected to the login page and a caller without the page's role gets 403,
exactly as for the page (the page view's own decorators decide).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from html.parser import HTMLParser
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateformat import format as date_format

VOID_ELEMENTS = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)
AS_OF_FORMAT = "Y-m-d H:i:s T"


class _RegionParser(HTMLParser):
    """Collects the inner HTML of every `data-live` element (outermost wins; names are unique)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.regions: dict[str, str] = {}
        self._name: str | None = None
        self._depth = 0
        self._parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._name is not None:
            self._parts.append(self.get_starttag_text() or "")
            if tag not in VOID_ELEMENTS:
                self._depth += 1
            return
        name = dict(attrs).get("data-live")
        if name and tag not in VOID_ELEMENTS:
            self._name, self._depth, self._parts = name, 1, []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._name is not None:
            self._parts.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if self._name is None or tag in VOID_ELEMENTS:
            return
        self._depth -= 1
        if self._depth == 0:
            self.regions[self._name] = "".join(self._parts)
            self._name = None
        else:
            self._parts.append(f"</{tag}>")

    def _text(self, text: str) -> None:
        if self._name is not None:
            self._parts.append(text)

    def handle_data(self, data: str) -> None:
        self._text(data)

    def handle_entityref(self, name: str) -> None:
        self._text(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self._text(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        self._text(f"<!--{data}-->")


def live_regions(html: str) -> dict[str, str]:
    """{name: inner HTML} of the `data-live` elements of a rendered page."""
    parser = _RegionParser()
    parser.feed(html)
    parser.close()
    return parser.regions


def as_of_text(moment: Any) -> str:
    """How pages print "as of": seconds and the zone (the request's active zone)."""
    return date_format(timezone.localtime(moment), AS_OF_FORMAT)


def live_json(page_view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The JSON twin of a page view: {"as_of", "as_of_text", "regions": {name: html}}."""

    @wraps(page_view)
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = page_view(request, *args, **kwargs)
        if response.status_code != 200 or not response.get("Content-Type", "").startswith("text/html"):
            return response  # the login redirect, 403 and 404 as the page answers them
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
        now = timezone.now()
        answer = JsonResponse(
            {
                "as_of": now.isoformat(),
                "as_of_text": as_of_text(now),
                "regions": live_regions(response.content.decode(response.charset or "utf-8")),
            }
        )
        answer["Cache-Control"] = "no-store"
        return answer

    view.__name__ = view.__qualname__ = f"{page_view.__name__}_live"
    return view
