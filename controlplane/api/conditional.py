"""Conditional writes on versioned documents (RFC 9110 ETag and If-Match).

A document's ETag is its current version number as a strong tag, `"v3"`. A write sent with
`If-Match` proceeds only when one of the listed tags names the current version; otherwise it answers
412 and changes nothing. `parent_version` in the body does the same job for clients that cannot set
headers (answering 409, as before); the service's conditional update closes the race between the
check here and the write.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.body import json_object_body
from controlplane.errors import DomainError, ValidationFailed

_STRONG_VERSION_TAG = re.compile(r'^"v([0-9]{1,9})"$')


class PreconditionFailed(DomainError):
    """The client's If-Match names a version that is no longer current."""

    status = 412


def version_etag(version: int) -> str:
    return f'"v{version}"'


def with_etag(response: Response, version: int) -> Response:
    response["ETag"] = version_etag(version)
    return response


def if_match_versions(request: Request) -> set[int] | None:
    """The versions an If-Match header allows, or None when there is no header (or `*`: any).
    Weak tags never match (If-Match uses strong comparison), so they are refused like garbage."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    versions: set[int] = set()
    for tag in header.split(","):
        match = _STRONG_VERSION_TAG.match(tag.strip())
        if match is None:
            raise PreconditionFailed(
                "If-Match must list ETags this API sent",
                problems=[
                    {"path": "If-Match", "message": f'{tag.strip()!r} is not a document ETag such as "v3"'}
                ],
            )
        versions.add(int(match.group(1)))
    return versions


def check_if_match(request: Request, *, current_version: int) -> int | None:
    """412 unless If-Match allows `current_version`; the version to pass on as the write's parent
    (None without the header) so a concurrent write between here and the update still loses."""
    versions = if_match_versions(request)
    if versions is None:
        return None
    if current_version not in versions:
        raise PreconditionFailed(
            f"the document is at version {current_version}, not {', '.join(f'v{v}' for v in sorted(versions))}",
            problems=[{"path": "If-Match", "message": f"current version is {current_version}"}],
            extra={"current_version": current_version},
        )
    return current_version


def versioned_update_body(
    request: Request, *, current_version: int, current_spec: dict[str, Any], partial: bool
) -> tuple[dict[str, Any], str, int | None]:
    """The body of an update to a versioned document: `(spec, note, parent_version)`.

    `note` and `parent_version` are taken out of the spec; a PATCH is merged over the current spec;
    the parent is the body's `parent_version` or else the version `If-Match` named (None: neither)."""
    matched = check_if_match(request, current_version=current_version)
    body = json_object_body(request)
    note = str(body.pop("note", "") or "")
    parent = body.pop("parent_version", None)
    if parent is not None and not isinstance(parent, int):
        raise ValidationFailed(
            "invalid input", problems=[{"path": "parent_version", "message": "must be an integer"}]
        )
    if partial:
        body = {**current_spec, **body}
    return body, note, parent if parent is not None else matched
