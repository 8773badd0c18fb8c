"""SLOs as code against PostgreSQL: `manage.py slo_apply` and the plan/apply endpoints."""

from __future__ import annotations

import io
import tarfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from controlplane.errors import ValidationFailed
from controlplane.models import AuditEvent
from slo.interop import openslo_import
from slo.models import Slo

pytestmark = pytest.mark.django_db

SERVICE = """apiVersion: openslo/v1
kind: Service
metadata:
  name: caption-api
  displayName: Caption API
spec:
  description: Captions for shelf photos
"""


def _slo_yaml(name: str, target: float = 0.99) -> str:
    return f"""apiVersion: openslo/v1
kind: SLO
metadata:
  name: {name}
  displayName: {name}
spec:
  service: caption-api
  indicator:
    metadata:
      name: {name}-ratio
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: sum(caption_requests_total{{slo="{name}", code="200"}})
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(caption_requests_total{{slo="{name}"}})
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: {target}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "slos"
    (root / "caption").mkdir(parents=True)
    (root / "service.yaml").write_text(SERVICE)
    (root / "caption" / "availability.yaml").write_text(_slo_yaml("availability"))
    (root / "caption" / "freshness.yml").write_text(_slo_yaml("freshness", 0.95))
    (root / "README.md").write_text("not YAML: ignored")
    return root


def _apply(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("slo_apply", str(path), "--source", "shelf-repo", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _live() -> dict[str, Slo]:
    return {s.name: s for s in Slo.objects.filter(archived_at__isnull=True)}


def _events() -> list[tuple[str, str]]:
    return list(
        AuditEvent.objects.filter(object_type="slo.slo").order_by("pk").values_list("action", "object_repr")
    )


def test_applied_twice_the_second_apply_changes_nothing(repo):
    first = _apply(repo)
    assert "create caption-api/availability" in first and "create caption-api/freshness" in first
    live = _live()
    assert set(live) == {"availability", "freshness"} and live["freshness"].objective == 95.0
    assert all(s.managed_by.source.name == "shelf-repo" for s in live.values())
    events = _events()
    assert events == [("create", "caption-api/availability"), ("create", "caption-api/freshness")]

    second = _apply(repo)
    assert "unchanged caption-api/availability" in second and "unchanged caption-api/freshness" in second
    assert "create" not in second and "update" not in second
    assert _events() == events
    assert {s.name: s.version for s in Slo.objects.all()} == {"availability": 1, "freshness": 1}
    _apply(repo, "--check")  # no difference: exits 0


def test_an_edited_file_is_an_update_with_its_diff_and_one_new_version(repo):
    _apply(repo)
    (repo / "caption" / "freshness.yml").write_text(_slo_yaml("freshness", 0.97))
    with pytest.raises(CommandError, match="differ"):
        _apply(repo, "--check")
    assert _live()["freshness"].objective == 95.0  # --check stores nothing
    out = _apply(repo)
    assert "update caption-api/freshness: ~ objective: 95.0 -> 97.0" in out
    slo = _live()["freshness"]
    assert slo.objective == 97.0 and slo.version == 2
    assert _events()[-1] == ("update", "caption-api/freshness")


def test_a_deleted_file_is_archived_only_with_prune_and_check_fails_meanwhile(repo):
    _apply(repo)
    (repo / "caption" / "freshness.yml").unlink()
    with pytest.raises(CommandError, match="differ"):
        _apply(repo, "--check")
    out = _apply(repo)
    assert "orphan caption-api/freshness" in out and "freshness" in _live()
    out = _apply(repo, "--prune")
    assert "prune caption-api/freshness" in out
    assert set(_live()) == {"availability"}
    assert Slo.objects.get(name="freshness").archived_at is not None
    assert _events()[-1] == ("archive", "caption-api/freshness")
    _apply(repo, "--check")  # in step again

    # the file comes back, with another objective: the archived SLO returns (its name stays taken)
    (repo / "caption" / "freshness.yml").write_text(_slo_yaml("freshness", 0.96))
    out = _apply(repo)
    assert "create caption-api/freshness: brings back the archived SLO of this name" in out
    slo = _live()["freshness"]
    assert slo.objective == 96.0 and slo.version == 2 and slo.managed_by.source.name == "shelf-repo"
    assert [a for a, _ in _events()[-2:]] == ["unarchive", "update"]
    _apply(repo, "--check")


def test_an_slo_made_outside_the_directory_is_refused_then_adopted(repo, users):
    # made by hand (an import through the API), not by this directory
    openslo_import(
        actor=users["operator"],
        text="---\n".join([SERVICE, _slo_yaml("availability", 0.9), _slo_yaml("hand-made")]),
    )
    manual = Slo.objects.get(name="availability")
    before = _events()
    with pytest.raises(CommandError, match="caption-api/availability: managed by no apply source"):
        _apply(repo)
    assert _events() == before and set(_live()) == {"availability", "hand-made"}  # nothing half-applied
    assert Slo.objects.get(pk=manual.pk).objective == 90.0
    # pruning never touches what the source does not manage
    out = _apply(repo, "--adopt", "--prune")
    assert "update caption-api/availability (adopt): " in out and "~ objective: 90.0 -> 99.0" in out
    assert _live()["availability"].managed_by.source.name == "shelf-repo"
    assert [a for a, _ in _events()[len(before) :]] == ["create", "update", "adopt"]
    assert set(_live()) == {"availability", "freshness", "hand-made"}
    assert "unchanged caption-api/availability" in _apply(repo)


def test_bad_input_names_the_file_and_stores_nothing(repo):
    (repo / "caption" / "broken.yaml").write_text(_slo_yaml("broken").replace("target: 0.99", "target: 2"))
    with pytest.raises(CommandError) as caught:
        _apply(repo)
    message = str(caught.value)
    assert "caption/broken.yaml: documents[0].spec.objectives[0]" in message and "\n" not in message
    assert Slo.objects.count() == 0 and _events() == []
    with pytest.raises(CommandError, match="not a directory"):
        _apply(repo / "missing")


def _tarball(root: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(root, arcname=".")
    return buffer.getvalue()


def test_the_api_plans_as_viewer_and_applies_as_operator_from_a_tarball(repo, api_for):
    def post(role, url, root=repo):
        upload = SimpleUploadedFile("slos.tar.gz", _tarball(root), content_type="application/gzip")
        return api_for(role).post(url, {"archive": upload}, format="multipart")

    plan = post("viewer", "/api/v1/openslo/plan/?source=shelf-repo")
    assert plan.status_code == 200, plan.json()
    assert plan.json()["differs"] and plan.json()["summary"]["create"] == 2 and Slo.objects.count() == 0
    assert post("viewer", "/api/v1/openslo/apply/?source=shelf-repo").status_code == 403

    applied = post("operator", "/api/v1/openslo/apply/?source=shelf-repo")
    assert applied.status_code == 200 and applied.json()["applied"]
    assert set(_live()) == {"availability", "freshness"}
    again = post("operator", "/api/v1/openslo/apply/?source=shelf-repo")
    assert again.json()["summary"]["unchanged"] == 2 and not again.json()["differs"]
    assert len(_events()) == 2

    (repo / "caption" / "freshness.yml").unlink()
    assert post("viewer", "/api/v1/openslo/plan/?source=shelf-repo").json()["differs"]
    pruned = post("operator", "/api/v1/openslo/apply/?source=shelf-repo&prune=true")
    assert pruned.json()["summary"]["prune"] == 1 and set(_live()) == {"availability"}


def test_the_api_takes_files_and_answers_400_with_the_path_on_bad_input(repo, api_for):
    client = api_for("operator")
    files = [
        SimpleUploadedFile("service.yaml", SERVICE.encode()),
        SimpleUploadedFile("availability.yaml", _slo_yaml("availability").encode()),
    ]
    response = client.post("/api/v1/openslo/apply/?source=shelf-repo", {"files": files}, format="multipart")
    assert response.status_code == 200, response.json()
    assert set(_live()) == {"availability"}

    bad = [SimpleUploadedFile("x.yaml", b"apiVersion: openslo/v1\nkind: SLO\nmetadata: {}\n")]
    response = client.post("/api/v1/openslo/apply/?source=shelf-repo", {"files": bad}, format="multipart")
    assert response.status_code == 400
    assert any(p["path"].startswith("x.yaml: documents[0].metadata") for p in response.json()["errors"])

    garbage = SimpleUploadedFile("slos.tar.gz", b"not a tarball")
    response = client.post(
        "/api/v1/openslo/apply/?source=shelf-repo", {"archive": garbage}, format="multipart"
    )
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "slos.tar.gz"
    response = client.post("/api/v1/openslo/apply/", {"files": files[:1]}, format="multipart")
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "source"


def test_the_api_refuses_an_slo_it_does_not_manage_and_stores_nothing(repo, api_for, users):
    openslo_import(actor=users["operator"], text="---\n".join([SERVICE, _slo_yaml("availability", 0.9)]))
    events = _events()
    upload = SimpleUploadedFile("slos.tar.gz", _tarball(repo))
    response = api_for("operator").post(
        "/api/v1/openslo/apply/?source=shelf-repo", {"archive": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "caption-api/availability"
    assert "adopt" in response.json()["errors"][0]["message"]
    assert set(_live()) == {"availability"} and _events() == events


def test_an_archive_skips_hidden_files_and_links_and_is_capped(repo, monkeypatch):
    from slo import apply

    (repo / ".git").mkdir()
    (repo / ".git" / "x.yaml").write_text("not: openslo")
    (repo / "link.yaml").symlink_to(repo / "service.yaml")
    files = apply.read_tarball(_tarball(repo), name="slos.tar.gz")
    assert [path for path, _ in files] == [
        "caption/availability.yaml",
        "caption/freshness.yml",
        "service.yaml",
    ]
    monkeypatch.setattr(apply, "MAX_UNPACKED", 1000)
    with pytest.raises(ValidationFailed) as caught:
        apply.read_tarball(_tarball(repo), name="slos.tar.gz")
    assert (
        caught.value.problems[0]["path"] == "slos.tar.gz" and "bytes" in caught.value.problems[0]["message"]
    )
