"""diff_documents: a readable structural diff of two JSON documents (SLOs, policies, caches).

Paths look like `rules[name=low-confidence].chain[1].timeout_ms`: items of a list whose entries
all carry a unique `name` are matched by name, so inserting a rule reports one added rule instead
of every later rule changing. Pure Python, no Django: the change log and the CLI both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    kind: Literal["added", "removed", "changed"]
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {self.after!r}"
        if self.kind == "removed":
            return f"- {self.path}: {self.before!r}"
        return f"~ {self.path}: {self.before!r} -> {self.after!r}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "before": self.before, "after": self.after}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _named(items: list[Any]) -> dict[str, Any] | None:
    """Items keyed by name when every item is an object with a unique string `name`."""
    if not items or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    by_name = {item["name"]: item for item in items}
    return by_name if len(by_name) == len(items) else None


def _same(a: Any, b: Any) -> bool:
    # 1 == True in Python, but a flag turned into a number is a change worth showing
    return (
        type(a) is type(b)
        and a == b
        or (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and not isinstance(a, bool)
            and not isinstance(b, bool)
            and a == b
        )
    )


def _diff(a: Any, b: Any, path: str, out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            sub = _join(path, str(key))
            if key not in b:
                out.append(Change(sub, "removed", before=a[key]))
            elif key not in a:
                out.append(Change(sub, "added", after=b[key]))
            else:
                _diff(a[key], b[key], sub, out)
        return
    if isinstance(a, list) and isinstance(b, list):
        named_a, named_b = _named(a), _named(b)
        if named_a is not None and named_b is not None:
            for name, item in named_a.items():
                sub = f"{path}[name={name}]"
                if name in named_b:
                    _diff(item, named_b[name], sub, out)
                else:
                    out.append(Change(sub, "removed", before=item))
            for name, item in named_b.items():
                if name not in named_a:
                    out.append(Change(f"{path}[name={name}]", "added", after=item))
            # order matters (rules are tried in order): report a reordering of the kept items
            kept_a = [n for n in named_a if n in named_b]
            kept_b = [n for n in named_b if n in named_a]
            if kept_a != kept_b:
                out.append(Change(path or "$", "changed", before=kept_a, after=kept_b))
            return
        for index in range(max(len(a), len(b))):
            sub = f"{path}[{index}]"
            if index >= len(b):
                out.append(Change(sub, "removed", before=a[index]))
            elif index >= len(a):
                out.append(Change(sub, "added", after=b[index]))
            else:
                _diff(a[index], b[index], sub, out)
        return
    if not _same(a, b):
        out.append(Change(path or "$", "changed", before=a, after=b))


def diff_documents(a: Any, b: Any) -> list[Change]:
    """Changes that turn document `a` into `b`, in a stable order (object keys sorted).

    A reordering of named list items is one `changed` entry at the list's path whose before and
    after are the item names in order. The root path is `$`.
    """
    out: list[Change] = []
    _diff(a, b, "", out)
    return out
