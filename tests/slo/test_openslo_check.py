"""The real-world check (slo.openslo.check): it passes our own files and catches a silent loss."""

from __future__ import annotations

from pathlib import Path

import yaml

from slo.openslo import export_openslo, import_openslo
from slo.openslo.check import _lost, check_paths, check_text, main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openslo"


def test_our_fixtures_import_or_are_refused_and_none_loses_anything() -> None:
    checks = check_paths([FIXTURES])

    assert len(checks) >= 5
    assert {c.status for c in checks} <= {"imported", "refused"}, [
        (c.path, c.status, c.details) for c in checks
    ]
    assert all(c.status == "imported" for c in checks if "shapes" in c.path)


def test_a_value_missing_from_the_export_and_from_every_warning_is_a_loss() -> None:
    text = (FIXTURES / "shapes" / "ratio-timeslices.yaml").read_text(encoding="utf-8")
    result = import_openslo(text)
    [document] = yaml.safe_load_all(export_openslo(result.slos))

    assert _lost(text, [document], result.unsupported) == []
    del document["spec"]["objectives"][0]["op"]  # as the export did before ops were kept
    document["spec"]["timeWindow"][0]["duration"] = "14d"  # and as it wrote 2w
    lost = _lost(text, [document], result.unsupported)
    assert lost == [
        "documents[0].spec.timeWindow[0].duration: '2w' (exported: '14d')",
        "documents[0].spec.objectives[0].op: 'gt' (exported: None)",
    ]


def test_a_refusal_gives_its_paths_and_the_command_exits_zero_for_it(tmp_path: Path, capsys) -> None:
    text = (FIXTURES / "shapes" / "ratio-timeslices.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "quantile.yaml"
    bad.write_text(
        text.replace(
            'sum(rate(caption_requests_total{code!~"5.."}[5m]))',
            "histogram_quantile(0.9, rate(caption_seconds_bucket[5m]))",
        )
    )

    check = check_text(bad.read_text(), str(bad))
    assert check.status == "refused"
    assert "ratioMetric.good.metricSource.spec.query: histogram_quantile" in check.summary
    assert main([str(bad)]) == 0
    assert "refused" in capsys.readouterr().out
