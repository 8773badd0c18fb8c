"""Dashboard pages of releases: the list, one release, and its buttons.

Reads go through `routing.releases.selectors`; which buttons show and which states count as open
come from the state machine (`routing.releases.machine`). The buttons call
`routing.releases.lifecycle`, which enforces every rule again: a hidden button is a courtesy, not
the check.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

from controlplane.errors import DomainError
from controlplane.lib.charts import duration
from controlplane.roles import APPROVER, OPERATOR, VIEWER
from routing.releases import machine
from routing.releases import selectors as release_selectors
from web import presenters
from web.access import role_required
from web.canary_charts import canary_charts
from web.views.documents import problem_lines

# The "open" filter: every state a release can still leave (the machine's non-final states).
OPEN_STATES = tuple(state for state in machine.STATES if state not in machine.FINAL_STATES)


def _accepts(release: Any, event: str) -> bool:
    """Whether the state machine takes `event` from the release's state (a paused release resumes
    only to where it paused from)."""
    return event in machine.allowed_events(release.state, paused_from=release.paused_from or None)


@login_required
@role_required(VIEWER)
def releases(request: HttpRequest) -> HttpResponse:
    """Releases, newest first, filterable by state and service."""
    queryset = (
        release_selectors.release_queryset()
        .annotate(
            approvals_given=Count("approvals", filter=Q(approvals__decision="approve")),
        )
        .order_by("-created_at", "-id")
    )
    state = request.GET.get("state", "")
    if state == "open":
        queryset = queryset.filter(state__in=OPEN_STATES)
    elif state in machine.STATES:
        queryset = queryset.filter(state=state)
    else:
        state = ""
    service = request.GET.get("service", "")[:63]
    if service:
        queryset = queryset.filter(service__name=service)
    page = Paginator(queryset, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "routing/releases.html",
        {
            "nav": "releases",
            "page": page,
            "state": state,
            "service": service,
            "states": machine.STATES,
            "query": query.urlencode(),
            "service_names": sorted(
                release_selectors.release_queryset()
                .order_by()
                .values_list("service__name", flat=True)
                .distinct()
            ),
        },
    )


def _release_or_404(pk: int) -> Any:
    release = (
        release_selectors.release_queryset()
        .select_related("author", "routing_policy_version__line", "cache_config_version__line")
        .filter(pk=pk)
        .first()
    )
    if release is None:
        raise Http404("no such release")
    return release


def release_actions(release: Any, user: Any) -> dict[str, Any]:
    """Which buttons a user sees. The services enforce the same rules (and more, e.g. the budget
    freeze); this only keeps buttons off pages where they could never succeed."""
    from controlplane.roles import has_role

    wrote = release_selectors.content_authored_by(release=release, user=user)
    is_author = (release.author_id is not None and release.author_id == user.pk) or bool(wrote)
    decided = release.approvals.filter(approver_id=user.pk).exists() if user.is_authenticated else False
    can_decide = (
        has_role(user, APPROVER)
        and _accepts(release, machine.APPROVE)
        and _accepts(release, machine.REJECT)
        and not is_author
        and not decided
    )
    touched = release.targets.filter(touched_at__isnull=False).exists()
    return {
        "can_approve": can_decide,
        "can_reject": can_decide,
        # a paused release waits for a person: an approver other than its author goes on...
        "can_resume": has_role(user, APPROVER) and _accepts(release, machine.RESUME) and not is_author,
        # ...or an operator stops it, as long as no gateway runs it (then it is rolled back)
        "can_submit": has_role(user, OPERATOR) and _accepts(release, machine.SUBMIT),
        "can_cancel": has_role(user, OPERATOR) and _accepts(release, machine.CANCEL) and not touched,
        "can_rollback": has_role(user, OPERATOR)
        and _accepts(release, machine.ROLLBACK)
        and (
            # a paused release that touched no gateway is cancelled, not rolled back
            release.state != machine.PAUSED or touched
        ),
        "is_author": is_author,
        "wrote_content": wrote,
        "is_approver": has_role(user, APPROVER),
        "already_decided": decided,
    }


def _bake(release: Any, *, now: datetime) -> dict[str, Any] | None:
    """The current wave's bake: when it ends and how long is left (None unless a wave is baking)."""
    waves = release.waves or []
    if (
        release.state != machine.ROLLING_OUT
        or release.wave_phase != "baking"
        or release.bake_started_at is None
    ):
        return None
    if not 0 <= release.current_wave < len(waves):
        return None
    ends = release.bake_started_at + timedelta(seconds=float(waves[release.current_wave].get("bake_s") or 0))
    left = max(0.0, (ends - now).total_seconds())
    return {"wave": release.current_wave + 1, "ends": ends, "left_s": left, "left": duration(left)}


@login_required
@role_required(VIEWER)
def release_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One release: what it changes, gate evidence, approvals, wave progress and rollbacks."""
    release = _release_or_404(pk)
    targets = list(release.targets.order_by("wave").values("wave", "touched_at", "gateway_id"))
    waves = []
    for index, wave in enumerate(release.waves or []):
        in_wave = [t for t in targets if t["wave"] == index]
        touched = sum(1 for t in in_wave if t["touched_at"] is not None)
        if index < release.current_wave or release.state == machine.COMPLETED:
            status = "done"
        elif index == release.current_wave:
            status = release.wave_phase or "current"
        else:
            status = "waiting"
        waves.append(
            {
                "number": index + 1,
                "percent": wave.get("percent"),
                "requested": wave.get("requested_percent"),
                "bake": duration(wave.get("bake_s")),
                "gateways": len(in_wave),
                "touched": touched,
                "status": status,
                "progress": round(100 * touched / len(in_wave)) if in_wave else 0,
            }
        )
    approvals = list(release.approvals.order_by("at", "id"))
    bake = _bake(release, now=timezone.now())
    canary = canary_charts(
        release.gate_results.filter(gate="canary").order_by("at", "id").values_list("stage", "at", "evidence")
    )
    approved = sum(1 for a in approvals if a.decision == "approve")
    gate_rows = list(release.gate_results.order_by("-at", "-id")[:200])
    for g in gate_rows:
        g.view = presenters.gate_evidence(g.gate, g.outcome, g.evidence)
        g.title = presenters.gate_title(g.gate)
        g.stage_text = presenters.stage_label(g.stage)
    rollbacks = list(release.rollbacks.order_by("-at", "-id"))
    for rb in rollbacks:
        rb.view = presenters.rollback_evidence(trigger=rb.trigger, reason=rb.reason, evidence=rb.evidence)
    return render(
        request,
        "routing/release_detail.html",
        {
            "nav": "releases",
            "release": release,
            "waves": waves,
            "bake": bake,
            "canary": canary,
            "gates": gate_rows,
            "approvals": approvals,
            "approved": approved,
            "transitions": list(release.transitions.order_by("at", "id")),
            "rollbacks": rollbacks,
            "alerts_received": list(release.alert_receipts.order_by("-received_at", "-id")[:50]),
            "wave_preview": release_selectors.wave_preview(
                release=release, confirmed_for=release.wave_sizes_confirmed_for
            )
            if release.state == machine.DRAFT
            else None,
            "actions": release_actions(release, request.user),
        },
    )


_ACTION_DONE = {
    "approve": "You approved release {pk}.",
    "reject": "You rejected release {pk}.",
    "resume": "You resumed release {pk}: your reason is recorded as an override.",
    "cancel": "You cancelled release {pk}.",
    "rollback": "Rollback of release {pk} started: rollbacks are delivered first.",
}


def _release_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Call the release service for a button; its refusal becomes a message on the page."""
    from django.contrib import messages
    from django.shortcuts import redirect

    from routing.releases import lifecycle as release_services

    release = _release_or_404(pk)
    comment = (request.POST.get("comment") or "").strip()[:2000]
    # approvals take a comment, the other actions a reason: the same text box either way
    argument = "comment" if action in ("approve", "reject") else "reason"
    try:
        getattr(release_services, f"release_{action}")(
            actor=request.user, release_id=release.pk, **{argument: comment}
        )
        messages.success(request, _ACTION_DONE[action].format(pk=release.pk))
    except DomainError as exc:
        details = "; ".join(p["message"] for p in problem_lines(exc) if p["message"] != str(exc))
        messages.error(request, f"{exc}{': ' + details if details else ''}")
    return redirect("dashboard:release", pk=release.pk)


def _release_action_view(action: str, role: str) -> Any:
    """A POST-only button view for one release action, for one role (the service checks again)."""

    @login_required
    @require_POST
    @role_required(role)
    def view(request: HttpRequest, pk: int) -> HttpResponse:
        return _release_action(request, pk, action)

    view.__name__ = view.__qualname__ = f"release_{action}"
    return view


release_approve = _release_action_view("approve", APPROVER)
release_reject = _release_action_view("reject", APPROVER)
release_resume = _release_action_view("resume", APPROVER)  # never the author: the service refuses
release_rollback = _release_action_view("rollback", OPERATOR)
release_cancel = _release_action_view("cancel", OPERATOR)
