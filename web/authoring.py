"""Authoring in the browser: a service's refusal shown at the form's fields.

The dashboard's forms validate nothing themselves. They turn the posted text into the body the API
takes and call the same service function as the API; a `ValidationFailed` (or any domain error)
comes back with problems that carry a field path (`sli.threshold_ms`, `waves[1].percent`), and this
module puts each problem next to the form field that produced that path. A problem whose path no
field claims is shown at the top of the form, with its path, so nothing is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_INDEX = re.compile(r"\[(\d+)\]")


def _problem_dicts(problems: Iterable[Any]) -> list[dict[str, str]]:
    out = []
    for problem in problems:
        item = problem if isinstance(problem, Mapping) else problem.as_dict()
        out.append({"path": str(item.get("path", "") or ""), "message": str(item.get("message", ""))})
    return out


def _parents(path: str) -> list[str]:
    """`sli.threshold_ms` -> [`sli.threshold_ms`, `sli`]; `waves[1].percent` -> [..., `waves[1]`, `waves`]."""
    out = [path]
    while path:
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            break
        path = path[:cut]
        out.append(path)
    return out


class FormErrors:
    """Problems of a service call, placed at fields: `fields` maps a problem path (or a parent of
    it) to a form field name. `errors.at("name")` is the list of messages for that field."""

    def __init__(
        self, fields: Mapping[str, str], exc: Exception | None = None, *, message: str = "", default: str = ""
    ) -> None:
        self.fields = dict(fields)
        self.default = default  # the field that takes every unclaimed problem, with its path
        self.by_field: dict[str, list[str]] = {}
        self.other: list[dict[str, str]] = []
        self.message = message
        if exc is not None:
            self.add(exc)

    def add(self, exc: Exception) -> None:
        self.message = self.message or str(getattr(exc, "message", "") or exc)
        problems = _problem_dicts(getattr(exc, "problems", None) or [])
        if not problems:
            self.other.append({"path": "", "message": self.message})
        for problem in problems:
            field = next((self.fields[p] for p in _parents(problem["path"]) if p in self.fields), None)
            if field is None and self.default:
                text = f"{problem['path']}: {problem['message']}" if problem["path"] else problem["message"]
                self.by_field.setdefault(self.default, []).append(text)
            elif field is None:
                self.other.append(problem)
            else:
                self.by_field.setdefault(field, []).append(problem["message"])

    def __bool__(self) -> bool:
        return bool(self.by_field or self.other or self.message)

    def at(self, field: str) -> list[str]:
        """The messages for one field (not `__getitem__`: templates would read every attribute
        through it)."""
        return self.by_field.get(field, [])

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.by_field.values()) + len(self.other)


def text_or_none(value: str | None) -> str | None:
    """A posted text box: stripped, and None when empty (the key is left out of the body)."""
    value = (value or "").strip()
    return value or None


def number(value: str | None) -> Any:
    """A posted number box as the JSON number the API would get; text that is not a number is
    passed on unchanged, so the service's own validation names it at its path."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def compact(body: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the keys of empty boxes (None), as an API client would not send them."""
    return {key: value for key, value in body.items() if value is not None}
