"""Check OpenSLO files as other tools write them (pure: no Django, no database).

For each file: import it; a refused file must say why (its problems, each with a path); an imported
file is exported back and every value of the original is looked for in the export, or in a problem or
warning whose path covers it. A value found in neither was lost silently. Run as
`python -m slo.openslo.check DIR...` (scripts/check-real-world.sh): one line per file, exit status 1
when a file crashed the importer or lost something silently, 0 otherwise (refusals are fine when the
reason is precise: read them).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slo.openslo.exporter import export_openslo_with_report
from slo.openslo.importer import import_openslo
from slo.spec import Problem

INTERNAL_ERROR = "internal error"


@dataclass
class FileCheck:
    path: str
    status: str  # imported | refused | crash | loses-data
    summary: str
    details: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status in ("crash", "loses-data")


def check_text(text: str, name: str = "<text>") -> FileCheck:
    try:
        result = import_openslo(text)
    except Exception as exc:  # noqa: BLE001 -- import_openslo promises never to raise: report it
        return FileCheck(name, "crash", f"import raised {type(exc).__name__}: {exc}")
    if any(INTERNAL_ERROR in p.message for p in result.problems):
        return FileCheck(name, "crash", "the importer failed on this input (logged)")
    if result.problems:
        return FileCheck(
            name,
            "refused",
            _problems(result.problems, 3),
            [f"{p.path}: {p.message}" for p in result.problems],
        )
    try:
        exported, export_problems = export_openslo_with_report(result.slos, result.services)
        documents = [d for d in yaml.safe_load_all(exported) if d]
        documents += _composites(result.composites, documents)
    except Exception as exc:  # noqa: BLE001 -- a crash of ours, reported as such
        return FileCheck(name, "crash", f"export raised {type(exc).__name__}: {exc}")
    lost = _lost(text, documents, [*result.unsupported, *export_problems])
    what = [
        f"{len(result.slos)} SLO(s)"
        + (f" ({', '.join(s.service + '/' + s.name for s in result.slos)})" if result.slos else "")
    ]
    if result.services:
        what.append(f"{len(result.services)} service(s)")
    if result.composites:
        names = ", ".join(f"{c['service']}/{c['name']}" for c in result.composites)
        what.append(f"{len(result.composites)} composite SLO(s) ({names})")
    for source in result.datasources:
        if (source["type"] or "").lower() == "prometheus":
            what.append(
                f"DataSource {source['name']} -> telemetry source {source['name']!r} (matched, or created from {source['url'] or 'no url'})"
            )
        else:
            what.append(f"DataSource {source['name']} ({source['type'] or 'no type'}: not pulled, reported)")
    if not (result.slos or result.services or result.datasources or result.composites):
        what = ["nothing to import"] + [f"{p.path}: {p.message}" for p in result.unsupported[:2]]
    summary = ", ".join(what) + f"; {len(result.unsupported)} warning(s)"
    details = [f"warning {p.path}: {p.message}" for p in result.unsupported]
    if lost:
        return FileCheck(name, "loses-data", summary, [f"LOST {line}" for line in lost] + details)
    return FileCheck(name, "imported", summary, details)


def _problems(problems: list[Problem], limit: int) -> str:
    text = "; ".join(f"{p.path}: {p.message}" for p in problems[:limit])
    return text + (f" (+{len(problems) - limit} more)" if len(problems) > limit else "")


# -- silent loss -------------------------------------------------------------------------------------


def _objects(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for index, document in enumerate(yaml.safe_load_all(text)):
        items = enumerate(document) if isinstance(document, list) else [(None, document)]
        for item_index, item in items:
            if isinstance(item, dict):
                out.append(
                    (
                        f"documents[{index}]" if item_index is None else f"documents[{index}][{item_index}]",
                        item,
                    )
                )
    return out


Key = str | int


def _leaves(node: Any, keys: tuple[Key, ...] = ()) -> list[tuple[tuple[Key, ...], Any]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _leaves(value, (*keys, str(key)))]
    if isinstance(node, list):
        return [leaf for i, value in enumerate(node) for leaf in _leaves(value, (*keys, i))]
    return [] if node is None else [(keys, node)]


def _text(keys: tuple[Key, ...]) -> str:
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


def _at(node: Any, keys: tuple[Key, ...]) -> Any:
    for key in keys:
        if isinstance(key, int) and isinstance(node, list):
            node = node[key] if key < len(node) else None
        elif isinstance(key, str) and isinstance(node, dict):
            node = node.get(key)
        else:
            return None
    return node


def _got(target: Any, keys: tuple[Key, ...]) -> Any:
    """The exported value at `keys`, allowing the forms that say the same thing differently."""
    value = _at(target, keys)
    if value is None and keys and keys[-1] == "targetPercent":
        target_value = _at(target, (*keys[:-1], "target"))
        return None if target_value is None else round(target_value * 100, 10)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b or str(a) == str(b)


def _composites(composites: list[dict[str, Any]], exported: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The composites exported back, each member from its exported SLO (None: not in this file)."""
    from slo.openslo.composites import export_composite

    by_ref = {
        f"{d['spec'].get('service')}/{(d.get('metadata') or {}).get('name')}": d
        for d in exported
        if d.get("kind") == "SLO"
    }
    return [export_composite(c, [by_ref.get(m["slo"]) for m in c["members"]]) for c in composites]


def _lost(text: str, exported: list[dict[str, Any]], reported: list[Problem]) -> list[str]:
    covered = [p.path for p in reported]

    def is_covered(path: str) -> bool:
        return any(path == c or path.startswith(c + ".") or path.startswith(c + "[") for c in covered)

    by_name = {(d.get("kind"), (d.get("metadata") or {}).get("name")): d for d in exported}
    objects = _objects(text)
    # SLIs used by reference are exported inline in the SLOs that use them
    inline: dict[str, dict[str, Any]] = {}
    for _, obj in objects:
        ref = (obj.get("spec") or {}).get("indicatorRef") if obj.get("kind") == "SLO" else None
        if isinstance(ref, str) and (slo := by_name.get(("SLO", (obj.get("metadata") or {}).get("name")))):
            inline.setdefault(ref, slo["spec"]["indicator"])
    lost = []
    for path, obj in objects:
        kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name")
        if is_covered(path):
            continue
        if kind == "SLI":
            target = inline.get(name)
            pairs = [
                (keys, value, _got(target, keys) if target else None)
                for keys, value in _leaves({k: v for k, v in obj.items() if k in ("metadata", "spec")})
            ]
        elif kind == "DataSource":
            # consumed by the telemetry source mapping: its name, type and url
            used = {("metadata", "name"), ("spec", "type"), ("apiVersion",), ("kind",)}
            pairs = [
                (keys, value, value if keys in used or keys[-1] == "url" else None)
                for keys, value in _leaves(obj)
            ]
        else:
            target = by_name.get((kind, name))
            pairs = [(keys, value, _got(target, keys) if target else None) for keys, value in _leaves(obj)]
            if kind == "SLO" and target and isinstance((obj.get("spec") or {}).get("indicatorRef"), str):
                pairs = [
                    (
                        keys,
                        value,
                        target["spec"]["indicator"]["metadata"]["name"]
                        if keys == ("spec", "indicatorRef")
                        else got,
                    )
                    for keys, value, got in pairs
                ]
        for keys, value, got in pairs:
            full = f"{path}.{_text(keys)}"
            if not is_covered(full) and not _same(value, got):
                lost.append(f"{full}: {value!r} (exported: {got!r})")
    return lost


# -- command line ------------------------------------------------------------------------------------


def check_paths(roots: list[Path]) -> list[FileCheck]:
    files = sorted(
        p
        for root in roots
        for p in ([root] if root.is_file() else root.rglob("*"))
        if p.is_file() and p.suffix in (".yaml", ".yml")
    )
    checks = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            checks.append(FileCheck(str(file), "refused", f"cannot read: {exc}"))
            continue
        check = check_text(text, str(file))
        checks.append(check)
    return checks


def through_the_catalog(checks: list[FileCheck]) -> None:
    """Import each file the pure check imported through the catalog too (slo.interop, dry run: the
    database is not changed): a refusal there is a refusal with its reason, any other exception the
    crash an API client would see as a 500. Needs Django settings and a migrated database."""
    import django

    django.setup()
    from controlplane.errors import ValidationFailed
    from slo.interop import openslo_import

    for check in checks:
        if check.status != "imported":
            continue
        try:
            result = openslo_import(
                actor=None, text=Path(check.path).read_text(encoding="utf-8"), dry_run=True
            )
        except ValidationFailed as exc:
            problems = [Problem(p["path"], p["message"]) for p in exc.problems]
            check.status, check.summary = "refused", "catalog: " + _problems(problems, 3)
        except Exception as exc:  # noqa: BLE001 -- what the API would answer with a 500
            check.status, check.summary = "crash", f"catalog import raised {type(exc).__name__}: {exc}"
        else:
            for source in result["datasources"]:
                reason = f" ({source['reason']})" if source.get("reason") else ""
                check.details.append(f"DataSource {source['name']}: {source['action']}{reason}")


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    catalog = "--catalog" in argv
    roots = [Path(a) for a in argv if a not in ("-v", "--catalog")]
    if not roots:
        print("usage: python -m slo.openslo.check [-v] [--catalog] DIR_OR_FILE...", file=sys.stderr)
        return 2
    checks = check_paths(roots)
    if catalog:
        through_the_catalog(checks)
    for check in checks:
        print(f"{check.status:10} {check.path}: {check.summary}")
        for line in check.details if (verbose or check.failed) else []:
            print(f"           {line}")
    failed = [c for c in checks if c.failed]
    counts = {s: sum(c.status == s for c in checks) for s in ("imported", "refused", "crash", "loses-data")}
    print(f"{len(checks)} files: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
