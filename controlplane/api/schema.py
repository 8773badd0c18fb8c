"""drf-spectacular descriptions of our authentication schemes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "controlplane.auth.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Personal API token: `Authorization: Bearer slo_...`",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "controlplane.auth.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


# --- the error envelope, documented on every operation ------------------------------------------

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every API error (controlplane.api.errors): an RFC 9457 problem document, served as "
    "`application/problem+json`, with each field path in the `errors` extension member. "
    "Some errors add context keys: a stale edit's `current_version`, a refused release's `gates`.",
    "properties": {
        "type": {"type": "string", "description": "`about:blank`: the status and title say what happened."},
        "title": {"type": "string", "description": "The HTTP status phrase."},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {"type": "string", "description": "One readable line."},
        "errors": {
            "type": "array",
            "description": "Each problem with the path of the field it concerns (empty path: the whole request).",
            "items": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
                "required": ["path", "message"],
            },
        },
    },
    "required": ["type", "title", "status", "detail", "errors"],
}

_UNSAFE = {"post", "put", "patch", "delete"}
# versioned documents: GET answers an ETag ("v3"), PUT/PATCH honour If-Match (controlplane.api.conditional)
_CONDITIONAL_PATHS = ("/api/v1/slos/{id}/", "/api/v1/routing-policies/{id}/", "/api/v1/cache-configs/{id}/")
_IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": 'The ETag of the version this edit is based on, e.g. "v3"; 412 when it is no longer current.',
}
_ERRORS = {
    "400": "Invalid input: every problem with its field path; nothing was changed.",
    "401": "No valid credentials (a missing, unknown, expired or revoked token).",
    "403": "Authenticated, but the role does not allow this (or a CSRF failure on a session write).",
    "404": "No such object.",
    "409": "Conflict: a stale edit, a duplicate, or a transition the object's state does not allow.",
    "412": "If-Match names a version that is no longer current (or is not an ETag this API sent).",
    "429": "Rate limited; retry after the `Retry-After` header's seconds.",
    "503": "The database is unreachable; retry after the `Retry-After` header's seconds.",
}


def document_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation documents the error statuses it can
    answer, each with the shared `Error` body, so clients generated from the schema know them and
    the schema tests can check status codes and error bodies like any other response."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete", "head", "options"}:
                continue
            responses = operation.setdefault("responses", {})
            has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
            # 404 everywhere: besides the path's own object, bodies and filters name objects by id
            wanted = {"401", "403", "404", "429", "503"}
            if method in _UNSAFE or has_query or "{" in path:
                wanted.add("400")  # bodies, query filters and malformed path values are validated
            if method in _UNSAFE:
                wanted.add("409")
            if method in {"put", "patch"} and path in _CONDITIONAL_PATHS:
                wanted.add("412")
                operation.setdefault("parameters", []).append(_IF_MATCH)
            for code in sorted(wanted):
                responses.setdefault(code, {"description": _ERRORS[code]})
            for code, response in responses.items():
                if code.startswith(("4", "5")) and "content" not in response:
                    response["content"] = {"application/problem+json": {"schema": ref}}
    return result
