"""Write a new routing policy or cache config version in the browser, and approve one.

The editor starts from the line's newest version as YAML (JSON is YAML too). Its buttons call the
same functions as the API's endpoints, server-side: Validate is `document_check` (the dry run of
`POST .../validate/`), Diff is the structural diff of `GET .../diff/` against the version the
editor was opened on, Simulate is `routing_policy_simulate` (`POST .../simulate/`) with the
unsaved document as the candidate, on the traffic the gateways recorded in the last hour, as the
release gate replays it. Save is `routing_policy_update` / `cache_config_update`: a new draft
version based on the one the editor was opened on (409 when someone saved in between), with its
audit event. Operators write; approvers approve a draft someone else wrote.
"""

from __future__ import annotations

from typing import Any

import yaml
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from controlplane.errors import DomainError, NotFound, ValidationFailed
from controlplane.roles import APPROVER, OPERATOR
from routing.documents import selectors as documents
from routing.documents import services as document_services
from routing.documents.kinds import ROUTING_POLICY
from routing.documents.yamlio import load_yaml
from slo.diff import diff_documents
from web.access import role_required
from web.authoring import FormErrors
from web.views.documents import KINDS, simulation_rows

MAX_EDITOR_TEXT = 200_000  # characters: a policy is a few kB
ACTIONS = ("validate", "diff", "simulate", "save")
# every problem of a document is shown at the editor (`default`), with its path inside the document;
# a stale base version is shown at the note, next to the Save button
FIELDS = {"note": "note", "parent_version": "note"}


def _line_or_404(kind_slug: str, pk: int) -> tuple[Any, Any]:
    kind = KINDS.get(kind_slug)
    if kind is None:
        raise Http404("no such document kind")
    try:
        return kind, documents.line_get(kind=kind, ref=str(pk))
    except NotFound:
        raise Http404("no such document") from None


def document_text(document: Any) -> str:
    """A stored document as the editor's YAML (keys in their stored order)."""
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def _parse(text: str) -> Any:
    """The editor's text as a document, or the reader's problems (paths inside the document)."""
    if len(text) > MAX_EDITOR_TEXT:
        raise ValidationFailed(
            "invalid input", problems=[{"path": "", "message": f"at most {MAX_EDITOR_TEXT:,} characters"}]
        )
    document, problems = load_yaml(text)
    if problems:
        raise ValidationFailed("the text is not a readable YAML or JSON document", problems=problems)
    return document


@login_required
@role_required(OPERATOR)
def document_edit(request: HttpRequest, kind_slug: str, pk: int) -> HttpResponse:
    """The editor: a new version of a routing policy or cache config, from the newest one."""
    kind, line = _line_or_404(kind_slug, pk)
    current = documents.version_get(kind=kind, line=line, version=line.current_version)
    context: dict[str, Any] = {
        "nav": "policies",
        "kind": kind,
        "kind_slug": kind_slug,
        "line": line,
        "current": current,
        "text": document_text(current.document),
        "note": "",
        "based_on": current.version,
        "action": "",
        "errors": FormErrors(FIELDS, default="document"),
        "checked": None,
        "diff": None,
        "simulation": None,
        "simulation_rows": [],
        "simulate_problems": [],
        "can_simulate": kind is ROUTING_POLICY,
    }
    if request.method != "POST":
        return render(request, "authoring/document_form.html", context)

    action = request.POST.get("action", "")
    text = request.POST.get("document", "")
    note = (request.POST.get("note") or "").strip()[:500]
    try:
        based_on = int(request.POST.get("parent_version", ""))
    except ValueError:
        based_on = current.version
    context.update(text=text, note=note, based_on=based_on, action=action)
    if action not in ACTIONS or (action == "simulate" and kind is not ROUTING_POLICY):
        context["errors"].add(ValidationFailed("choose validate, diff, simulate or save"))
        return render(request, "authoring/document_form.html", context)
    try:
        document = _parse(text)
    except ValidationFailed as exc:
        context["errors"].add(exc)
        return render(request, "authoring/document_form.html", context)
    if isinstance(document, dict) and "service" not in document:
        document = {"service": line.service.name, **document}

    if action == "save":
        update = (
            document_services.routing_policy_update
            if kind is ROUTING_POLICY
            else document_services.cache_config_update
        )
        try:
            saved, created = update(
                actor=request.user, line_id=line.pk, document=document, note=note, parent_version=based_on
            )
        except DomainError as exc:
            context["errors"].add(exc)
            return render(request, "authoring/document_form.html", context)
        if created:
            messages.success(
                request,
                f"Saved {kind.label} v{saved.current_version} of {line.service.name} as a draft: "
                "an approver other than you approves it before a release can ship it.",
            )
        else:
            messages.info(request, f"Nothing changed: v{saved.current_version} already has this document.")
        return redirect(
            reverse("dashboard:document", args=[kind_slug, line.pk]) + f"?v={saved.current_version}"
        )

    # Validate always; Diff and Simulate add their answer (all three are reads: nothing is stored)
    context["checked"] = documents.document_check(kind=kind, service=line.service, document=document)
    if action == "diff":
        base = documents.version_specs(kind=kind, line_id=line.pk, versions=[based_on]).get(based_on)
        context["diff"] = {
            "from": based_on,
            "changes": diff_documents(base, document) if base is not None else [],
            "missing": base is None,
        }
    if action == "simulate":
        from routing.documents.simulation import routing_policy_simulate

        try:
            # against what the fleet runs (else the newest approved), as the API; a line with
            # neither is compared with the version the editor started from
            body = {} if documents.baseline_version(kind=kind, line=line) else {"baseline_version": based_on}
            result = routing_policy_simulate(line=line, body=body, candidate_document=document)
            context["simulation"] = result
            context["simulation_rows"] = simulation_rows(result)
        except DomainError as exc:
            context["simulate_problems"] = [{"path": "", "message": exc.message}, *exc.problems]
    return render(request, "authoring/document_form.html", context)


@login_required
@require_POST
@role_required(APPROVER)
def document_approve(request: HttpRequest, kind_slug: str, pk: int, version: int) -> HttpResponse:
    """draft -> approved, as `POST .../versions/<v>/approve/` (the service refuses the author)."""
    kind, line = _line_or_404(kind_slug, pk)
    approve = (
        document_services.routing_policy_approve
        if kind is ROUTING_POLICY
        else document_services.cache_config_approve
    )
    try:
        approve(actor=request.user, line_id=line.pk, version=version)
        messages.success(request, f"You approved {kind.label} v{version} of {line.service.name}.")
    except DomainError as exc:
        messages.error(request, str(exc))
    return redirect(reverse("dashboard:document", args=[kind_slug, line.pk]) + f"?v={version}")
