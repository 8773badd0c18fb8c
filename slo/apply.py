"""SLOs as code: apply a directory of OpenSLO files to the catalog, with a plan first.

The directory's files are read as (relative path, text) pairs, from disk, a .tar.gz or an upload.
Each file is imported on its own by the OpenSLO importer (so its problems name the file), the plan
is slo.apply_plan's pure function over (desired, current), and applying it is one transaction:
one audit event per change, nothing half-applied. An apply source (`SloSource`) records which SLOs
a directory manages; SLOs it does not manage are refused unless adopted, and only its own are pruned.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from pathlib import Path
from typing import Any

from django.db import transaction

from controlplane.audit import audit_record
from controlplane.errors import ValidationFailed
from slo import services
from slo.apply_plan import Action, Current, plan_apply, plan_differs, plan_summary
from slo.models import Service, Slo
from slo.models.apply import SloManagedBy, SloSource
from slo.spec import Problem, SloSpec, slugify_name

SUFFIXES = (".yaml", ".yml")
MAX_FILES = 500
MAX_BYTES = 8 * 1024 * 1024  # all files together
MAX_MEMBERS = 5000  # entries of an archive, of any kind
MAX_UNPACKED = 64 * 1024 * 1024  # an archive's entries together, of any kind


def _refuse(path: str, message: str) -> ValidationFailed:
    return ValidationFailed("the directory cannot be applied", problems=[Problem(path, message)])


def _decode(path: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _checked(files: list[tuple[str, str]], where: str) -> list[tuple[str, str]]:
    if not files:
        raise _refuse(where, "no .yaml or .yml files found")
    if len(files) > MAX_FILES:
        raise _refuse(where, f"{len(files)} files: at most {MAX_FILES}")
    return sorted(files)


def read_directory(root: str | Path) -> list[tuple[str, str]]:
    """Every .yaml/.yml file under `root` (recursively, hidden directories skipped)."""
    base = Path(root)
    if not base.is_dir():
        raise _refuse(str(root), "not a directory")
    files, total = [], 0
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if (
            any(part.startswith(".") for part in rel.parts)
            or not path.is_file()
            or path.suffix not in SUFFIXES
        ):
            continue
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise _refuse(str(path), f"cannot read ({exc.strerror})") from None
        total += len(raw)
        if total > MAX_BYTES:
            raise _refuse(str(path), f"the files together exceed {MAX_BYTES} bytes")
        files.append((str(path), _decode(str(path), raw)))
    return _checked(files, str(root))


def read_tarball(raw: bytes, *, name: str = "archive") -> list[tuple[str, str]]:
    """The .yaml/.yml regular files of a .tar.gz (read in memory, nothing written to disk)."""
    try:
        archive = tarfile.open(fileobj=io.BytesIO(raw), mode="r:*")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _refuse(name, f"not a readable tar archive ({exc})") from None
    files, total, seen, unpacked = [], 0, 0, 0
    with archive:
        try:
            # lazily, with caps on every member (YAML or not): a small .tar.gz can inflate a lot
            for member in archive:
                seen += 1
                unpacked += max(member.size, 0)
                if seen > MAX_MEMBERS or unpacked > MAX_UNPACKED:
                    raise _refuse(
                        name, f"the archive holds more than {MAX_MEMBERS} entries or {MAX_UNPACKED} bytes"
                    )
                parts = Path(member.name).parts
                if (
                    not member.isfile()
                    or not member.name.endswith(SUFFIXES)
                    or any(p.startswith(".") and p != "." for p in parts)
                ):
                    continue
                total += member.size
                if total > MAX_BYTES or len(files) >= MAX_FILES:
                    raise _refuse(
                        f"{name}:{member.name}", f"more than {MAX_BYTES} bytes or {MAX_FILES} files of YAML"
                    )
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                path = member.name.removeprefix("./")
                files.append((path, _decode(f"{name}:{path}", handle.read())))
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise _refuse(name, f"not a readable tar archive ({exc})") from None
    return _checked(files, name)


def desired_state(
    files: list[tuple[str, str]],
) -> tuple[dict[str, SloSpec], list[dict[str, Any]], list[dict[str, Any]]]:
    """SLO specs by "service/name", service documents, and warnings. Any problem refuses all."""
    from slo.openslo import import_openslo

    specs: dict[str, SloSpec] = {}
    seen_in: dict[str, str] = {}
    service_docs: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    warnings: list[dict[str, Any]] = []
    for path, text in files:
        result = import_openslo(text)
        problems += [Problem(f"{path}: {p.path}", p.message) for p in result.problems]
        warnings += [{"path": f"{path}: {p.path}", "message": p.message} for p in result.unsupported]
        for doc in result.services:
            service_docs.setdefault(doc["name"], doc)
        for composite in result.composites:
            # refused, not dropped: applying the member SLOs without their composite would be half a change
            problems.append(
                Problem(
                    f"{path}: {composite['service']}/{composite['name']}",
                    "composite SLOs are not applied as code: import the file with POST /api/v1/openslo/import/ "
                    "or manage the composite with /api/v1/composites/",
                )
            )
        for spec in result.slos:
            key = f"{spec.service}/{spec.name}"
            if key in seen_in:
                problems.append(
                    Problem(f"{path}: metadata.name", f"SLO {key} is also defined in {seen_in[key]}")
                )
                continue
            seen_in[key] = path
            specs[key] = spec
    if problems:
        raise ValidationFailed("the directory cannot be applied", problems=problems)
    return specs, list(service_docs.values()), warnings


def _current() -> tuple[dict[str, Current], dict[str, Slo]]:
    """Live SLOs as plan input, and every SLO (archived ones too: names stay taken) by key."""
    slos = Slo.objects.select_related("service", "managed_by__source")
    current, by_key = {}, {}
    for slo in slos:
        key = f"{slo.service.name}/{slo.name}"
        by_key[key] = slo
        if slo.archived_at is None:
            managed = getattr(slo, "managed_by", None)
            current[key] = Current(slo.spec, managed.source.name if managed else "")
    return current, by_key


def slo_apply(
    *,
    actor: Any,
    files: list[tuple[str, str]],
    source: str,
    adopt: bool = False,
    prune: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Plan, and unless `dry_run` apply, the directory `files` as apply source `source`.

    Raises ValidationFailed (nothing stored) on bad input or when the plan refuses an SLO.
    """
    name = slugify_name(source or "")
    if not source or name != source:
        raise _refuse(
            "source", f"{source!r} is not a valid apply source name (lowercase letters, digits, '-')"
        )
    specs, service_docs, warnings = desired_state(files)
    desired = {key: spec.model_dump(mode="json", exclude_none=True) for key, spec in specs.items()}
    with transaction.atomic():
        # one apply per source at a time; others wait here instead of racing the plan
        source_row = (
            SloSource.objects.get_or_create(name=source)[0]
            if not dry_run
            else SloSource.objects.filter(name=source).first()
        )
        if source_row is not None and not dry_run:
            SloSource.objects.select_for_update().get(pk=source_row.pk)
        current, by_key = _current()
        archived = {key for key, slo in by_key.items() if slo.archived_at is not None}
        actions = plan_apply(desired, current, source=source, adopt=adopt, prune=prune, archived=archived)
        refused = [a for a in actions if a.kind == "refuse"]
        report = {
            "source": source,
            "dry_run": dry_run,
            "differs": plan_differs(actions),
            "summary": plan_summary(actions),
            "plan": [a.as_dict() for a in actions],
            "lines": [a.line() for a in actions],
            "warnings": warnings,
            "applied": False,
        }
        if refused and not dry_run:
            raise ValidationFailed(
                "the directory cannot be applied",
                problems=[Problem(f"{a.key}", a.reason) for a in refused],
                extra={"plan": report["plan"], "lines": report["lines"]},
            )
        if dry_run:
            return report
        assert source_row is not None
        _ensure_services(actor, specs, service_docs)
        note = f"applied from source {source}"
        for action in actions:
            _carry_out(action, actor=actor, source=source_row, desired=desired, by_key=by_key, note=note)
        report["applied"] = True
    return report


def _ensure_services(actor: Any, specs: dict[str, SloSpec], service_docs: list[dict[str, Any]]) -> None:
    """Create the services the directory names and the catalog lacks (existing ones are left as they are)."""
    docs = {doc["name"]: doc for doc in service_docs}
    for name in sorted({spec.service for spec in specs.values()} | set(docs)):
        if Service.objects.filter(name=name).exists():
            continue
        doc = docs.get(name, {})
        tiers = sorted({s.tier for s in specs.values() if s.service == name and s.tier}) or [
            "edge",
            "private_cloud",
            "public_cloud",
        ]
        services.service_create(
            actor=actor,
            data={
                "name": name,
                "display_name": doc.get("display_name", ""),
                "description": doc.get("description", ""),
                "labels": doc.get("labels", {}),
                "service_class": doc.get("service_class", "interactive"),
                "tiers": tiers,
            },
        )


def _carry_out(
    action: Action,
    *,
    actor: Any,
    source: SloSource,
    desired: dict[str, dict[str, Any]],
    by_key: dict[str, Slo],
    note: str,
) -> None:
    try:
        if action.kind == "create" and action.key in by_key:  # archived: it comes back
            slo = services.slo_unarchive(actor=actor, slo_id=by_key[action.key].pk, note=note)
            services.slo_update(
                actor=actor, slo_id=slo.pk, data=desired[action.key], note=note, parent_version=slo.version
            )
            SloManagedBy.objects.update_or_create(slo=slo, defaults={"source": source})
        elif action.kind == "create":
            slo = services.slo_create(actor=actor, data=desired[action.key], note=note)
            SloManagedBy.objects.create(slo=slo, source=source)
        elif action.kind == "update":
            slo = by_key[action.key]
            if action.changes:
                services.slo_update(
                    actor=actor,
                    slo_id=slo.pk,
                    data=desired[action.key],
                    note=note,
                    parent_version=slo.version,
                )
            if action.adopted:
                before = getattr(slo, "managed_by", None)
                SloManagedBy.objects.update_or_create(slo=slo, defaults={"source": source})
                audit_record(
                    actor=actor,
                    action="adopt",
                    obj=slo,
                    before={"managed_by": before.source.name if before else ""},
                    after={"managed_by": source.name},
                    note=note,
                )
        elif action.kind == "prune":
            services.slo_archive(actor=actor, slo_id=by_key[action.key].pk)
    except ValidationFailed as exc:
        raise ValidationFailed(
            "the directory cannot be applied",
            problems=[Problem(action.key, f"{p['path']}: {p['message']}") for p in exc.problems],
        ) from None
