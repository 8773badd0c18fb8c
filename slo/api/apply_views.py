"""SLOs as code over HTTP: plan (viewer) and apply (operator) an uploaded directory of OpenSLO files."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.parsers import MultiPartParser
from controlplane.errors import ValidationFailed
from controlplane.roles import OPERATOR, VIEWER
from slo.spec import Problem

_PARAMETERS = [
    OpenApiParameter(
        "source", str, required=True, description="apply source name, e.g. the repository directory"
    ),
    OpenApiParameter("adopt", bool, required=False),
    OpenApiParameter("prune", bool, required=False),
]
_REQUEST = {
    "multipart/form-data": {
        "type": "object",
        "properties": {
            "archive": {"type": "string", "format": "binary", "description": "a .tar.gz of the directory"},
            "files": {
                "type": "array",
                "items": {"type": "string", "format": "binary"},
                "description": "or the files themselves",
            },
        },
    }
}


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


def _files(request: Request) -> list[tuple[str, str]]:
    from slo.apply import MAX_BYTES, MAX_FILES, read_tarball

    archive = request.FILES.get("archive")
    uploads = request.FILES.getlist("files")
    if archive is not None and uploads:
        raise ValidationFailed(
            "invalid input", problems=[Problem("archive", "send an archive or files, not both")]
        )
    if archive is not None:
        if archive.size > MAX_BYTES:
            raise ValidationFailed(
                "invalid input", problems=[Problem("archive", f"larger than {MAX_BYTES} bytes")]
            )
        return read_tarball(archive.read(), name=archive.name or "archive")
    if not uploads:
        raise ValidationFailed(
            "invalid input",
            problems=[
                Problem(
                    "archive",
                    "send the directory as a multipart .tar.gz named `archive`, or its files as `files`",
                )
            ],
        )
    if len(uploads) > MAX_FILES:
        raise ValidationFailed(
            "invalid input", problems=[Problem("files", f"{len(uploads)} files: at most {MAX_FILES}")]
        )
    if sum(upload.size for upload in uploads) > MAX_BYTES:
        raise ValidationFailed(
            "invalid input", problems=[Problem("files", f"larger than {MAX_BYTES} bytes together")]
        )
    out: dict[str, str] = {}
    for index, upload in enumerate(uploads):
        name = upload.name or f"files[{index}]"
        if name in out:
            raise ValidationFailed(
                "invalid input", problems=[Problem(f"files[{index}]", f"two files named {name!r}")]
            )
        try:
            out[name] = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailed(
                "invalid input", problems=[Problem(f"files[{index}]", f"{name}: not UTF-8 text")]
            ) from None
    return sorted(out.items())


def _run(request: Request, *, dry_run: bool) -> Response:
    from slo.apply import slo_apply

    source = request.query_params.get("source", "")
    if not source:
        raise ValidationFailed(
            "invalid input", problems=[Problem("source", "required: the apply source name")]
        )
    report = slo_apply(
        actor=request.user,
        files=_files(request),
        source=source,
        adopt=_flag(request, "adopt"),
        prune=_flag(request, "prune"),
        dry_run=dry_run,
    )
    return Response(report, status=200)


class SloApplyView(APIView):
    """Apply an uploaded directory of OpenSLO files in one transaction; the answer holds the plan.

    A plan that refuses an SLO (managed elsewhere, without `adopt`) is a 400 and nothing is stored.
    """

    read_role = OPERATOR
    write_role = OPERATOR
    parser_classes = [MultiPartParser]

    @extend_schema(request=_REQUEST, parameters=_PARAMETERS, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        return _run(request, dry_run=False)


class SloPlanView(APIView):
    """The plan of applying an uploaded directory, without storing anything; `differs` is the CI check."""

    read_role = VIEWER
    write_role = VIEWER
    parser_classes = [MultiPartParser]

    @extend_schema(request=_REQUEST, parameters=_PARAMETERS, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        return _run(request, dry_run=True)
