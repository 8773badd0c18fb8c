"""Request body parsers for every API view: DRF's, with the limits of controlplane.safeload.

A body nested deeper than safeload.MAX_DEPTH, or holding a NUL character in any string, key or
form field, is a 400 naming the path; it never reaches a serializer, a service or PostgreSQL.
"""

from __future__ import annotations

import codecs
from typing import Any

from rest_framework import parsers

from controlplane.errors import ValidationFailed
from controlplane.safeload import InputRefused, check_plain, load_json


def _refused(exc: InputRefused) -> ValidationFailed:
    return ValidationFailed("invalid input", problems=[{"path": exc.path, "message": exc.message}])


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                "invalid input", problems=[{"path": "", "message": f"not {encoding}: {exc.reason}"}]
            ) from None
        try:
            return load_json(text)
        except InputRefused as exc:
            raise _refused(exc) from None


def _check_form(data: Any) -> None:
    try:
        check_plain({key: data.getlist(key) for key in data})
    except InputRefused as exc:
        raise _refused(exc) from None


class FormParser(parsers.FormParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        _check_form(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """Form fields are checked; uploaded files are the view's to read (as YAML, CSV...)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        result = super().parse(stream, media_type, parser_context)
        _check_form(result.data)
        return result
