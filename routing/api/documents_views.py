"""Routing policies and cache configs over the API: versioned documents, explain, simulate, tuning.

Both kinds share one viewset base. `{id}` is the line's id or its service's name
(`/api/v1/routing-policies/shelf-vision/`). Documents come as JSON (`{"document": {...}}`), as
YAML inside JSON (`{"yaml": "..."}`), or as a YAML body (Content-Type application/yaml) with
`note`, `parent_version` and `service` as query parameters.
"""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.body import PlainTextParser, json_object_body
from controlplane.api.conditional import check_if_match, with_etag
from controlplane.api.parsers import JSONParser
from controlplane.errors import NotFound, ValidationFailed
from controlplane.roles import APPROVER, OPERATOR, VIEWER
from routing.api.documents_serializers import (
    DocumentCheckSerializer,
    DocumentDiffSerializer,
    DocumentLineSerializer,
    DocumentRestoreSerializer,
    DocumentValidateSerializer,
    DocumentVersionSerializer,
    DocumentWriteSerializer,
    ExplainKeyResultSerializer,
    ExplainKeySerializer,
    ExplainResultSerializer,
    ExplainSerializer,
    RecommendThresholdResultSerializer,
    RecommendThresholdSerializer,
    SimulateResultSerializer,
    SimulateSerializer,
)
from routing.documents import selectors, services
from routing.documents.kinds import CACHE_CONFIG, ROUTING_POLICY, Kind
from routing.documents.yamlio import load_yaml
from routing.models.documents import CacheConfigDocument, RoutingPolicyDocument
from routing.policy import cache_config_json_schema, routing_policy_json_schema
from slo.diff import diff_documents
from slo.spec import Problem

YAML_BODY = {"application/yaml": OpenApiTypes.STR}
VERSION_PATH = OpenApiParameter("version", int, OpenApiParameter.PATH, description="version number")


def _int_or_none(value: Any, path: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValidationFailed("invalid input", problems=[Problem(path, "must be an integer")])
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ValidationFailed("invalid input", problems=[Problem(path, "must be an integer")])


def _yaml_document(text: str, path: str) -> Any:
    document, problems = load_yaml(text)
    if problems:
        raise ValidationFailed(
            "invalid YAML",
            problems=[
                Problem(f"{path}.{p.path}".rstrip(".") if path else p.path, p.message) for p in problems
            ],
        )
    return document


def document_input(request: Request) -> tuple[Any, dict[str, Any]]:
    """(document, {"note", "parent_version", "service"}) from any accepted body shape."""
    data = request.data
    if isinstance(data, bytes | str):
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
        except UnicodeDecodeError:
            raise ValidationFailed(
                "invalid input", problems=[Problem("", "the body must be UTF-8")]
            ) from None
        params = request.query_params
        meta = {
            "note": params.get("note", ""),
            "parent_version": _int_or_none(params.get("parent_version"), "parent_version"),
            "service": params.get("service"),
        }
        return _yaml_document(text, ""), meta
    body = json_object_body(request)
    if ("document" in body) == ("yaml" in body):
        raise ValidationFailed(
            "invalid input",
            problems=[
                Problem(
                    "document",
                    'send {"document": {...}} or {"yaml": "..."}, or a YAML body (Content-Type application/yaml)',
                )
            ],
        )
    if "yaml" in body:
        if not isinstance(body["yaml"], str):
            raise ValidationFailed("invalid input", problems=[Problem("yaml", "must be YAML text")])
        document = _yaml_document(body["yaml"], "yaml")
    else:
        document = body["document"]
    note = body.get("note", "")
    if not isinstance(note, str):
        raise ValidationFailed("invalid input", problems=[Problem("note", "must be a string")])
    meta = {
        "note": note,
        "parent_version": _int_or_none(body.get("parent_version"), "parent_version"),
        "service": body.get("service"),
    }
    return document, meta


class RoutingPolicyFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__name")
    service_class = django_filters.CharFilter(field_name="service__service_class")

    class Meta:
        model = RoutingPolicyDocument
        fields = ["service", "service_class"]


class CacheConfigFilter(RoutingPolicyFilter):
    class Meta:
        model = CacheConfigDocument
        fields = ["service", "service_class"]


class _DocumentViewSet(viewsets.GenericViewSet):
    """Shared by routing policies and cache configs; subclasses set `kind` and the JSON schema."""

    kind: Kind
    serializer_class = DocumentLineSerializer
    lookup_value_regex = r"[^/]+"
    parser_classes = [JSONParser, PlainTextParser]
    ordering_fields = ["service__name", "updated_at", "created_at"]
    ordering = ["service__name"]
    read_role = VIEWER
    write_role = OPERATOR
    # dry runs and explanations change nothing: readers may call them
    action_roles = {
        "approve": APPROVER,
        "validate": VIEWER,
        "explain": VIEWER,
        "simulate": VIEWER,
        "explain_key": VIEWER,
        "recommend_threshold": VIEWER,
    }

    def get_queryset(self) -> Any:
        return self.kind.line_model.objects.select_related("service")

    def _line(self) -> Any:
        line = selectors.line_get(kind=self.kind, ref=str(self.kwargs["pk"]))
        self.check_object_permissions(self.request, line)
        return line

    def _line_data(self, line: Any) -> dict[str, Any]:
        context = {
            "current": selectors.current_versions(kind=self.kind, line_ids=[line.pk]),
            "active": selectors.active_by_line(kind=self.kind, lines=[line]),
        }
        return DocumentLineSerializer(line, context=context).data

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = {
            "current": selectors.current_versions(kind=self.kind, line_ids=[line.pk for line in page]),
            "active": selectors.active_by_line(kind=self.kind, lines=page),
        }
        return self.get_paginated_response(DocumentLineSerializer(page, many=True, context=context).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        line = self._line()
        return with_etag(Response(self._line_data(line)), line.current_version)

    def create(self, request: Request) -> Response:
        document, meta = document_input(request)
        service_ref = meta["service"]
        if service_ref is None and isinstance(document, dict):
            service_ref = document.get("service")
        service = selectors.service_get(ref=service_ref)
        create = (
            services.routing_policy_create if self.kind is ROUTING_POLICY else services.cache_config_create
        )
        line = create(actor=request.user, service=service, document=document, note=meta["note"])
        return with_etag(Response(self._line_data(line), status=201), line.current_version)

    def update(self, request: Request, pk: str | None = None) -> Response:
        line = self._line()
        matched = check_if_match(request, current_version=line.current_version)
        document, meta = document_input(request)
        update = (
            services.routing_policy_update if self.kind is ROUTING_POLICY else services.cache_config_update
        )
        parent = meta["parent_version"] if meta["parent_version"] is not None else matched
        line, _created = update(
            actor=request.user,
            line_id=line.pk,
            document=document,
            note=meta["note"],
            parent_version=parent,
        )
        return with_etag(Response(self._line_data(line)), line.current_version)

    @action(detail=False, methods=["post"])
    def validate(self, request: Request) -> Response:
        """Dry run: every problem of a document against its service; nothing is stored."""
        document, meta = document_input(request)
        service_ref = meta["service"]
        if service_ref is None and isinstance(document, dict):
            service_ref = document.get("service")
        service = selectors.service_get(ref=service_ref)
        if isinstance(document, dict) and "service" not in document:
            document = {"service": service.name, **document}
        checked = selectors.document_check(kind=self.kind, service=service, document=document)
        return Response(checked.as_dict())

    @action(detail=False, methods=["get"], url_path="schema")
    def json_schema(self, request: Request) -> Response:
        """The JSON Schema of the document."""
        return Response(self.document_schema())

    def document_schema(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        """Every version, newest first."""
        line = self._line()
        page = self.paginate_queryset(self.kind.version_model.objects.filter(line=line).order_by("-version"))
        context = {"active": selectors.active_by_line(kind=self.kind, lines=[line])}
        return self.get_paginated_response(DocumentVersionSerializer(page, many=True, context=context).data)

    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version>[0-9]+)")
    def version(self, request: Request, pk: str | None = None, version: str = "") -> Response:
        """One version."""
        line = self._line()
        row = selectors.version_get(kind=self.kind, line=line, version=int(version))
        context = {"active": selectors.active_by_line(kind=self.kind, lines=[line])}
        return Response(DocumentVersionSerializer(row, context=context).data)

    @action(detail=True, methods=["get"])
    def diff(self, request: Request, pk: str | None = None) -> Response:
        """A structural diff between two versions (`to` defaults to the newest)."""
        line = self._line()
        from_version = _int_or_none(request.query_params.get("from"), "from")
        to_version = _int_or_none(request.query_params.get("to"), "to") or line.current_version
        if from_version is None:
            raise ValidationFailed("invalid input", problems=[Problem("from", "required: a version number")])
        specs = selectors.version_specs(kind=self.kind, line_id=line.pk, versions=[from_version, to_version])
        for number in (from_version, to_version):
            if number not in specs:
                raise NotFound(f"{self.kind.label} {line.pk} has no version {number}")
        changes = diff_documents(specs[from_version], specs[to_version])
        return Response(
            {
                "from_version": from_version,
                "to_version": to_version,
                "changes": [
                    {"path": c.path, "kind": c.kind, "before": c.before, "after": c.after} for c in changes
                ],
                "summary": [str(change) for change in changes],
            }
        )

    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str | None = None) -> Response:
        """Write an old version's document as a new version."""
        line = self._line()
        data = DocumentRestoreSerializer(data=json_object_body(request))
        data.is_valid(raise_exception=True)
        restore = (
            services.routing_policy_restore if self.kind is ROUTING_POLICY else services.cache_config_restore
        )
        line, _created = restore(
            actor=request.user,
            line_id=line.pk,
            version=data.validated_data["version"],
            note=data.validated_data.get("note", ""),
            parent_version=data.validated_data.get("parent_version"),
        )
        return Response(self._line_data(line))

    @action(detail=True, methods=["post"], url_path=r"versions/(?P<version>[0-9]+)/approve")
    def approve(self, request: Request, pk: str | None = None, version: str = "") -> Response:
        """draft -> approved. Approvers only, never the version's author."""
        line = self._line()
        approve = (
            services.routing_policy_approve if self.kind is ROUTING_POLICY else services.cache_config_approve
        )
        row = approve(actor=request.user, line_id=line.pk, version=int(version))
        context = {"active": selectors.active_by_line(kind=self.kind, lines=[line])}
        return Response(DocumentVersionSerializer(row, context=context).data)

    @action(detail=True, methods=["post"], url_path=r"versions/(?P<version>[0-9]+)/retire")
    def retire(self, request: Request, pk: str | None = None, version: str = "") -> Response:
        """draft or approved -> retired; refused while gateways run the version."""
        line = self._line()
        retire = (
            services.routing_policy_retire if self.kind is ROUTING_POLICY else services.cache_config_retire
        )
        row = retire(actor=request.user, line_id=line.pk, version=int(version))
        return Response(DocumentVersionSerializer(row, context={"active": {}}).data)


_SHARED_SCHEMAS = {
    "list": extend_schema(responses={200: DocumentLineSerializer(many=True)}),
    "retrieve": extend_schema(responses={200: DocumentLineSerializer}),
    "create": extend_schema(
        request={"application/json": DocumentWriteSerializer, **YAML_BODY},
        parameters=[
            OpenApiParameter("service", str, required=False),
            OpenApiParameter("note", str, required=False),
        ],
        responses={201: DocumentLineSerializer},
    ),
    "update": extend_schema(
        request={"application/json": DocumentWriteSerializer, **YAML_BODY},
        parameters=[
            OpenApiParameter("parent_version", int, required=False),
            OpenApiParameter("note", str, required=False),
        ],
        responses={200: DocumentLineSerializer},
    ),
    "validate": extend_schema(
        request={"application/json": DocumentValidateSerializer, **YAML_BODY},
        parameters=[OpenApiParameter("service", str, required=False)],
        responses={200: DocumentCheckSerializer},
    ),
    "json_schema": extend_schema(responses={200: OpenApiTypes.OBJECT}),
    "versions": extend_schema(responses={200: DocumentVersionSerializer(many=True)}),
    "version": extend_schema(parameters=[VERSION_PATH], responses={200: DocumentVersionSerializer}),
    "diff": extend_schema(
        parameters=[
            OpenApiParameter("from", int, required=True, description="older version"),
            OpenApiParameter("to", int, required=False, description="newer version (default: newest)"),
        ],
        responses={200: DocumentDiffSerializer},
    ),
    "restore": extend_schema(request=DocumentRestoreSerializer, responses={200: DocumentLineSerializer}),
    "approve": extend_schema(
        request=None, parameters=[VERSION_PATH], responses={200: DocumentVersionSerializer}
    ),
    "retire": extend_schema(
        request=None, parameters=[VERSION_PATH], responses={200: DocumentVersionSerializer}
    ),
}


@extend_schema_view(**_SHARED_SCHEMAS)
class RoutingPolicyViewSet(_DocumentViewSet):
    """Routing policies: one versioned line per service. Viewers read, explain and simulate;
    operators write versions and retire them; approvers approve (never their own)."""

    kind = ROUTING_POLICY
    queryset = RoutingPolicyDocument.objects.none()  # for the schema; get_queryset is the real one
    filterset_class = RoutingPolicyFilter

    def document_schema(self) -> dict[str, Any]:
        return routing_policy_json_schema()

    @extend_schema(request=ExplainSerializer, responses={200: ExplainResultSerializer})
    @action(detail=True, methods=["post"])
    def explain(self, request: Request, pk: str | None = None) -> Response:
        """The route chain for a request context, the rule that matched and why earlier rules did not."""
        line = self._line()
        body = json_object_body(request)
        context = body.get("context")
        if not isinstance(context, dict):
            raise ValidationFailed("invalid input", problems=[Problem("context", "required: an object")])
        version = _int_or_none(body.get("version"), "version")
        return Response(selectors.routing_policy_explain(line=line, version=version, context=context))

    @extend_schema(request=SimulateSerializer, responses={200: SimulateResultSerializer})
    @action(detail=True, methods=["post"])
    def simulate(self, request: Request, pk: str | None = None) -> Response:
        """Predict route mix, p95 per class, error-budget burn and cost of a candidate version against a
        baseline, from measured route figures where telemetry has them (the answer says which)."""
        from routing.documents.simulation import routing_policy_simulate

        return Response(routing_policy_simulate(line=self._line(), body=json_object_body(request)))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def cheapest(self, request: Request, pk: str | None = None) -> Response:
        """Search chain orders and rule thresholds for the cheapest policy whose predicted burn stays
        at or below 1x; a cheaper one is written as a draft version, with its simulation and the
        candidates rejected and why (operator)."""
        from routing.documents.cheapest import routing_policy_cheapest

        return Response(
            routing_policy_cheapest(actor=request.user, line=self._line(), body=json_object_body(request))
        )


@extend_schema_view(**_SHARED_SCHEMAS)
class CacheConfigViewSet(_DocumentViewSet):
    """Cache configs: one versioned line per service, with cache-key explain and semantic
    threshold tuning."""

    kind = CACHE_CONFIG
    queryset = CacheConfigDocument.objects.none()  # for the schema; get_queryset is the real one
    filterset_class = CacheConfigFilter

    def document_schema(self) -> dict[str, Any]:
        return cache_config_json_schema()

    @extend_schema(request=ExplainKeySerializer, responses={200: ExplainKeyResultSerializer})
    @action(detail=True, methods=["post"], url_path="explain-key")
    def explain_key(self, request: Request, pk: str | None = None) -> Response:
        """The cache key of a request: its parts, and which fields are missing (not cacheable)."""
        line = self._line()
        body = json_object_body(request)
        request_fields = body.get("request")
        if not isinstance(request_fields, dict):
            raise ValidationFailed("invalid input", problems=[Problem("request", "required: an object")])
        layer = body.get("layer")
        if layer is not None and not isinstance(layer, str):
            raise ValidationFailed("invalid input", problems=[Problem("layer", "a layer name")])
        version = _int_or_none(body.get("version"), "version")
        return Response(
            selectors.cache_config_explain_key(
                line=line, version=version, layer=layer, request=request_fields
            )
        )

    @extend_schema(
        request={"application/json": RecommendThresholdSerializer},
        responses={200: RecommendThresholdResultSerializer},
    )
    @action(detail=True, methods=["post"], url_path="recommend-threshold")
    def recommend_threshold(self, request: Request, pk: str | None = None) -> Response:
        """The lowest semantic similarity threshold whose false-hit rate stays within the target."""
        from controlplane.roles import OPERATOR, has_role
        from routing.documents.tuning import cache_config_recommend_threshold

        return Response(
            cache_config_recommend_threshold(
                line=self._line(),
                body=json_object_body(request),
                record=has_role(request.user, OPERATOR),
            )
        )
