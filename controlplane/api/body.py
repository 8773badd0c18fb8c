from __future__ import annotations

from typing import Any

from django.http import QueryDict
from rest_framework.parsers import BaseParser
from rest_framework.request import Request

from controlplane.errors import ValidationFailed


def json_object_body(request: Request) -> dict[str, Any]:
    """The request body as a plain dict, or a 400 naming the problem."""
    data = request.data
    if isinstance(data, QueryDict):
        data = data.dict()
    if not isinstance(data, dict):
        raise ValidationFailed(
            "invalid input", problems=[{"path": "", "message": "the body must be a JSON object"}]
        )
    return dict(data)


class PlainTextParser(BaseParser):
    """YAML or plain text bodies, handed to the view as a string."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> bytes:
        limit = 5 * 1024 * 1024
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise ValidationFailed(
                "invalid input", problems=[{"path": "", "message": "body larger than 5 MiB"}]
            )
        return data
