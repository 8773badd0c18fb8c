from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from slo.models import Service, Slo
from slo.openslo import import_openslo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openslo"
EXAMPLES = FIXTURES / "shapes"


def _post_yaml(client, text, **params):
    query = "?dry_run=true" if params.get("dry_run") else ""
    return client.post(f"/api/v1/openslo/import/{query}", data=text, content_type="application/yaml")


def test_the_readme_ratio_slo_imports_and_exports_back_equivalent(api_for):
    text = (FIXTURES / "readme-ratio.yaml").read_text()
    response = _post_yaml(api_for("operator"), text)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["services_created"] == ["foo"] and body["unsupported"] == []
    slo = Slo.objects.get(service__name="foo", name="foo-slo")
    assert slo.objective == 98.0 and slo.spec["window"] == {"type": "rolling", "days": 28}
    assert slo.spec["sli"]["good_query"] == 'sum(http_requests_total{service="foo", code=~"2..|3.."})'

    exported = api_for("viewer").get(f"/api/v1/slos/{slo.pk}/openslo/")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("application/yaml")
    original = [d for d in yaml.safe_load_all(text) if d["kind"] == "SLO"][0]
    back = [d for d in yaml.safe_load_all(exported.content.decode()) if d["kind"] == "SLO"][0]
    assert back["apiVersion"] == "openslo/v1" and back["metadata"]["name"] == "foo-slo"
    assert back["spec"]["timeWindow"] == original["spec"]["timeWindow"]
    assert back["spec"]["budgetingMethod"] == "Occurrences"
    assert back["spec"]["objectives"][0]["target"] == pytest.approx(0.98)
    ratio = back["spec"]["indicator"]["spec"]["ratioMetric"]
    assert (
        ratio["good"]["metricSource"]["spec"]["query"]
        == original["spec"]["indicator"]["spec"]["ratioMetric"]["good"]["metricSource"]["spec"]["query"]
    )
    # Equivalent: importing the export gives the same SLO.
    again = import_openslo(exported.content.decode())
    assert not again.problems
    assert again.slos[0].model_dump(mode="json", exclude_none=True) == slo.spec


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_the_example_shapes_import_through_the_api(api_for, name):
    response = _post_yaml(api_for("operator"), (EXAMPLES / name).read_text())
    assert response.status_code == 201, response.json()
    assert response.json()["created"]


def test_reimporting_makes_a_new_version_not_a_duplicate(api_for):
    text = (FIXTURES / "readme-ratio.yaml").read_text()
    _post_yaml(api_for("operator"), text)
    changed = text.replace("target: 0.98", "target: 0.99")
    body = _post_yaml(api_for("operator"), changed).json()
    assert body["updated"][0]["version"] == 2
    assert Slo.objects.filter(name="foo-slo").count() == 1


def test_a_dry_run_stores_nothing(api_for):
    response = _post_yaml(api_for("operator"), (FIXTURES / "readme-ratio.yaml").read_text(), dry_run=True)
    assert response.status_code == 200 and response.json()["created"]
    assert not Slo.objects.exists() and not Service.objects.exists()


def test_an_invalid_document_gets_400_and_stores_nothing(api_for):
    text = (FIXTURES / "readme-ratio.yaml").read_text().replace("target: 0.98", "target: 1.5")
    response = _post_yaml(api_for("operator"), text)
    assert response.status_code == 400
    assert any("objectives[0].target" in e["path"] for e in response.json()["errors"])
    assert not Service.objects.exists()


def test_broken_yaml_gets_400_with_the_line(api_for):
    response = _post_yaml(api_for("operator"), "apiVersion: openslo/v1\nkind: [unclosed\n")
    assert response.status_code == 400
    assert "line" in response.json()["errors"][0]["message"]


def test_a_viewer_cannot_import(api_for):
    assert _post_yaml(api_for("viewer"), (FIXTURES / "readme-ratio.yaml").read_text()).status_code == 403


def test_the_command_imports_and_exports(db, capsys):
    call_command("import_openslo", str(FIXTURES / "readme-ratio.yaml"))
    assert "1 SLOs created" in capsys.readouterr().out
    call_command("export_openslo", "--service", "foo")
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs] == ["Service", "SLO"]


def test_the_command_fails_with_one_readable_line(db, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: openslo/v1alpha\nkind: SLO\nmetadata: {name: x}\nspec: {}\n")
    with pytest.raises(CommandError) as excinfo:
        call_command("import_openslo", str(bad))
    assert "\n" not in str(excinfo.value) and "v1" in str(excinfo.value)
