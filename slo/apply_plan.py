"""The plan of an SLOs-as-code apply: desired documents against current ones (pure, no Django).

Keys are "service/name". `desired` maps each key to the SLO document a directory holds; `current`
maps each live SLO's key to its document and the apply source managing it ("" when it was made
outside any directory). Each key gets one action:

- create: the directory holds it, the catalog does not (when `archived` holds its key, the archived
  SLO of that name comes back, updated to the directory's document);
- update: both hold it and the documents differ (`changes` says how), or `adopt` takes over an
  SLO made outside this source (then `adopted` is true, even with no change);
- unchanged: both hold it, equal, and this source manages it;
- refuse: the directory would edit or take over an SLO this source does not manage, without `adopt`;
- prune: this source manages it and the directory no longer holds it, with `prune` (archive it);
- orphan: the same without `prune` (reported, left alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from slo.diff import Change, diff_documents

ActionKind = Literal["create", "update", "unchanged", "refuse", "prune", "orphan"]
ORDER: tuple[ActionKind, ...] = ("create", "update", "unchanged", "refuse", "prune", "orphan")


@dataclass(frozen=True, slots=True)
class Current:
    doc: dict[str, Any]
    managed_by: str = ""


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    key: str
    changes: list[Change] = field(default_factory=list)
    adopted: bool = False
    reason: str = ""

    def line(self) -> str:
        """One readable line: `update shelf-vision/latency: ~ objective: 99.0 -> 99.5`."""
        text = f"{self.kind} {self.key}"
        if self.adopted:
            text += " (adopt)"
        if self.changes:
            text += ": " + "; ".join(str(c) for c in self.changes)
        if self.reason:
            text += f": {self.reason}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.kind,
            "slo": self.key,
            "adopted": self.adopted,
            "changes": [c.as_dict() for c in self.changes],
            "reason": self.reason,
        }


def plan_apply(
    desired: dict[str, dict[str, Any]],
    current: dict[str, Current],
    *,
    source: str,
    adopt: bool = False,
    prune: bool = False,
    archived: frozenset[str] | set[str] = frozenset(),
) -> list[Action]:
    """Actions turning the catalog into the directory, sorted by kind then key."""
    actions: list[Action] = []
    for key in sorted(desired):
        now = current.get(key)
        if now is None:
            reason = "brings back the archived SLO of this name" if key in archived else ""
            actions.append(Action("create", key, reason=reason))
            continue
        changes = diff_documents(now.doc, desired[key])
        if now.managed_by == source:
            actions.append(Action("update", key, changes) if changes else Action("unchanged", key))
        elif adopt:
            actions.append(Action("update", key, changes, adopted=True))
        else:
            owner = (
                f"apply source {now.managed_by!r}"
                if now.managed_by
                else "no apply source (made outside a directory)"
            )
            actions.append(
                Action("refuse", key, changes, reason=f"managed by {owner}; pass adopt to take it over")
            )
    for key in sorted(set(current) - set(desired)):
        if current[key].managed_by != source:
            continue  # not ours: never pruned, not reported
        if prune:
            actions.append(Action("prune", key))
        else:
            actions.append(
                Action("orphan", key, reason="no longer in the directory; pass prune to archive it")
            )
    actions.sort(key=lambda a: (ORDER.index(a.kind), a.key))
    return actions


def plan_differs(actions: list[Action]) -> bool:
    """True when applying would change something, or the directory and catalog disagree."""
    return any(a.kind != "unchanged" for a in actions)


def plan_summary(actions: list[Action]) -> dict[str, int]:
    return {kind: sum(1 for a in actions if a.kind == kind) for kind in ORDER}
