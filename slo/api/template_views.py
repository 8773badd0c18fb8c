"""Inference-server templates: list them, and create a service with its SLOs from one."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.body import json_object_body
from controlplane.errors import ValidationFailed
from controlplane.roles import OPERATOR, VIEWER
from slo.template_services import service_from_template
from slo.templates import TEMPLATES
from slo.templates.builder import template_document


class ServiceTemplateListView(APIView):
    """The templates, their SLIs (metric names, default thresholds) and parameters."""

    read_role = VIEWER

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response({"results": [template_document(t) for _, t in sorted(TEMPLATES.items())]})


class ServiceFromTemplateView(APIView):
    """`{"template", "source", "service_name", "params"}`: one service and its SLOs, bound to the
    source, in one transaction. 201 with the thresholds picked among the source's bucket
    boundaries and the SLIs skipped; 400 with field paths; 502 when the source does not answer."""

    read_role = OPERATOR
    write_role = OPERATOR

    @extend_schema(
        request=inline_serializer(
            "ServiceFromTemplate",
            {
                "template": serializers.ChoiceField(choices=sorted(TEMPLATES)),
                "source": serializers.CharField(help_text="telemetry source name"),
                "service_name": serializers.CharField(),
                "params": serializers.DictField(required=False, help_text="template parameters"),
            },
        ),
        responses={201: OpenApiTypes.OBJECT, 502: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request) -> Response:
        body = json_object_body(request)
        problems = []
        for name in ("template", "source", "service_name"):
            if not isinstance(body.get(name), str) or not body.get(name):
                problems.append({"path": name, "message": "required: a non-empty string"})
        params = body.get("params", {})
        if not isinstance(params, dict):
            problems.append({"path": "params", "message": "must be an object"})
        unknown = sorted(set(body) - {"template", "source", "service_name", "params"})
        problems += [{"path": name, "message": "unknown field"} for name in unknown]
        if problems:
            raise ValidationFailed("invalid template request", problems=problems)
        if body["template"] not in TEMPLATES:
            raise ValidationFailed(
                "invalid template request",
                problems=[{"path": "template", "message": f"one of {', '.join(sorted(TEMPLATES))}"}],
            )
        result = service_from_template(
            actor=request.user,
            template=body["template"],
            source=body["source"],
            service_name=body["service_name"],
            params=params,
        )
        return Response(result, status=201)
