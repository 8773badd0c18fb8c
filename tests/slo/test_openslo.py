"""OpenSLO v1 import/export: the real examples, the round trip, and every way input can be wrong."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slo.openslo import (
    ANNOTATION_SLI,
    LABEL_CALENDAR_START,
    LABEL_INDICATOR_NAME,
    LABEL_LIST_LABELS,
    LABEL_NAME,
    LABEL_OBJECTIVE_DISPLAY_NAME,
    LABEL_SERVICE,
    LABEL_SOURCE_REF,
    LABEL_THRESHOLD_OP,
    LABEL_THRESHOLD_QUERY,
    export_openslo,
    export_openslo_with_report,
    import_openslo,
)
from slo.spec import NAME_RE, TIERS, SloSpec

# our own files in the shapes of the OpenSLO repository's budgeting-method examples (the published
# files themselves are checked by scripts/check-real-world.sh, outside the repository)
SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "openslo" / "shapes"
EXAMPLES = sorted(SHAPES.glob("*.yaml"))
FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "openslo").glob("*.yaml"))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def fixture(name: str) -> str:
    return read(Path(__file__).parent.parent / "fixtures" / "openslo" / name)


def paths(problems: list[Any]) -> list[str]:
    return [p.path for p in problems]


def messages(problems: list[Any]) -> str:
    return "\n".join(f"{p.path}: {p.message}" for p in problems)


def slo_doc(**spec_overrides: Any) -> dict[str, Any]:
    """A minimal valid OpenSLO v1 SLO document; override spec keys (None removes one)."""
    spec: dict[str, Any] = {
        "service": "shelf-vision",
        "indicator": {
            "metadata": {"name": "ok-requests"},
            "spec": {
                "ratioMetric": {
                    "counter": True,
                    "good": {"metricSource": {"type": "Prometheus", "spec": {"query": "good_total"}}},
                    "total": {"metricSource": {"type": "Prometheus", "spec": {"query": "all_total"}}},
                }
            },
        },
        "timeWindow": [{"duration": "28d", "isRolling": True}],
        "budgetingMethod": "Occurrences",
        "objectives": [{"target": 0.999}],
    }
    for key, value in spec_overrides.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "vision-ok"}, "spec": spec}


def dump(*documents: Any) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


def round_trip(text: str, **export_args: Any) -> tuple[Any, Any]:
    first = import_openslo(text)
    exported = export_openslo(first.slos, first.services, **export_args)
    return first, import_openslo(exported)


# ----------------------------------------------------------------------------------- real examples


def test_it_imports_the_readme_ratio_slo_exactly_and_silently() -> None:
    result = import_openslo(fixture("readme-ratio.yaml"))

    assert result.problems == [] and result.unsupported == []
    assert result.services == [
        {"name": "foo", "display_name": "Foo", "description": "The foo HTTP API", "labels": {}}
    ]
    [spec] = result.slos
    assert spec == SloSpec.model_validate(
        {
            "name": "foo-slo",
            "service": "foo",
            "display_name": "Foo SLO",
            "description": "Share of foo requests answered without a server error",
            "sli": {
                "kind": "custom",
                "good_query": 'sum(http_requests_total{service="foo", code=~"2..|3.."})',
                "total_query": 'sum(http_requests_total{service="foo"})',
            },
            "objective": 98.0,
            "window": {"type": "rolling", "days": 28},
            "budgeting_method": "occurrences",
            "labels": {
                LABEL_INDICATOR_NAME: "foo-error",
                "openslo.indicator.display-name": "Foo Error",
                LABEL_OBJECTIVE_DISPLAY_NAME: "Foo Total Errors",
            },
        }
    )


def test_it_imports_a_threshold_metric_as_a_latency_slo() -> None:
    result = import_openslo(read(SHAPES / "latency-occurrences.yaml"))

    assert result.problems == []
    [spec] = result.slos
    assert (spec.name, spec.service, spec.objective) == ("caption-latency", "caption-api", 98.0)
    assert spec.sli.kind == "latency" and spec.sli.threshold_ms == 400
    assert spec.window.type == "rolling" and spec.window.days == 14  # 2w
    assert spec.labels[LABEL_THRESHOLD_OP] == "lt"
    assert (
        spec.labels[LABEL_THRESHOLD_QUERY]
        == 'sum(rate(caption_request_duration_seconds_bucket{le="0.4"}[5m]))'
    )
    report = messages(result.unsupported)
    assert "thresholdMetric imported as a latency SLI" in report
    assert "op lt is applied as lte" in report
    # and `2w` is written back as `2w`, the op as `lt`
    [document] = yaml.safe_load_all(export_openslo(result.slos))
    assert document["spec"]["timeWindow"] == [{"duration": "2w", "isRolling": True}]
    assert document["spec"]["objectives"] == [
        {"displayName": "Fast captions", "op": "lt", "value": 400, "target": 0.98}
    ]


def test_it_imports_a_ratio_timeslices_slo_and_keeps_its_op() -> None:
    result = import_openslo(read(SHAPES / "ratio-timeslices.yaml"))

    assert result.problems == [] and result.unsupported == []
    [spec] = result.slos
    assert spec.budgeting_method == "ratio_timeslices" and spec.timeslice_target is None
    assert spec.sli.kind == "custom"
    assert spec.sli.good_query == 'sum(rate(caption_requests_total{code!~"5.."}[5m]))'
    assert spec.sli.total_query == "sum(rate(caption_requests_total[5m]))"
    [document] = yaml.safe_load_all(export_openslo(result.slos))
    assert document["spec"]["objectives"] == [
        {"displayName": "Answered", "op": "gt", "target": 0.97, "timeSliceWindow": "1m"}
    ]
    assert document["spec"]["timeWindow"] == [{"duration": "2w", "isRolling": True}]


def test_it_splits_a_two_objective_slo_into_one_slo_per_objective() -> None:
    result = import_openslo(read(SHAPES / "calendar-timeslices.yaml"))

    assert result.problems == []
    internal, contract = result.slos
    assert (internal.name, internal.objective, internal.timeslice_target) == ("caption-uptime", 99.7, 0.98)
    assert (contract.name, contract.objective, contract.timeslice_target) == (
        "caption-uptime-contract",
        99.0,
        0.98,
    )
    assert contract.display_name == "Caption uptime (Contract)"
    for spec in (internal, contract):
        assert spec.budgeting_method == "timeslices"
        assert spec.window.type == "calendar" and spec.window.unit == "month"
        assert spec.window.timezone == "Europe/Berlin"
        assert spec.window.start == "2023-03-01 06:00:00"  # months start on the 1st at 06:00 there
        assert LABEL_CALENDAR_START not in spec.labels  # the start is the window's, not bookkeeping
    warnings = {p.path: p.message for p in result.unsupported}
    assert "read as one month" in warnings["documents[0].spec.timeWindow[0].duration"]  # the `1m` quirk
    assert "separate SLO 'caption-uptime-contract'" in warnings["documents[0].spec.objectives[1]"]
    assert all(p.severity == "warning" for p in result.unsupported)


def test_it_reports_everything_it_drops_from_the_kitchen_sink() -> None:
    result = import_openslo(fixture("kitchen-sink.yaml"))

    assert result.problems == [], messages(result.problems)
    [service] = result.services
    assert service["name"] == "checkout-api"
    assert service["labels"] == {
        "team": "payments,sre",
        "tier": "1",
        LABEL_NAME: "Checkout_API",
        LABEL_LIST_LABELS: "team",
    }
    assert result.datasources == [
        {
            "name": "prom",
            "type": "Prometheus",
            "url": "http://prometheus:9090",
            "path": "documents[1]",
            "tier": None,
        }
    ]
    internal, contract = result.slos
    assert (internal.name, internal.objective) == ("checkout-availability", 99.95)
    assert (contract.name, contract.objective) == ("checkout-availability-contract", 99.9)
    assert internal.service == "checkout-api" and internal.labels[LABEL_SERVICE] == "Checkout_API"
    assert internal.sli.bad_query == 'sum(http_requests_total{service="checkout", code=~"5.."})'
    assert internal.window.model_dump(exclude_none=True) == {
        "type": "calendar",
        "unit": "week",
        "timezone": "Europe/Paris",
    }
    assert LABEL_CALENDAR_START not in internal.labels  # a Monday midnight is what our weeks do anyway
    assert internal.labels["regions"] == "eu,us" and internal.labels[LABEL_LIST_LABELS] == "regions"
    assert internal.labels[LABEL_SOURCE_REF] == "prom"  # mapped to the telemetry source of that name
    assert (
        internal.labels["openslo.annotation.example.com/dashboard"]
        == "https://grafana.example.com/d/checkout"
    )
    assert internal.labels[LABEL_NAME] == "Checkout_Availability"
    assert contract.labels[LABEL_NAME] == "Checkout_Availability-contract"

    warnings = messages(result.unsupported)
    assert "flattened" not in warnings and "DataSource" not in warnings  # lists and references are kept
    for expected in (
        "documents[3].spec.alertPolicies: alert policies not imported",
        "documents[3].spec.objectives[1]: one objective per SLO here",
        "documents[3].metadata.name: renamed to 'checkout-availability'",
        "documents[4]: AlertPolicy 'checkout-page' not imported",
        "documents[5]: SLI 'unused' is not referenced by any SLO",
    ):
        assert expected in warnings


# -------------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("path", EXAMPLES + FIXTURES, ids=lambda p: p.name)
def test_it_round_trips_every_example(path: Path) -> None:
    first, second = round_trip(read(path))

    assert first.problems == [] and first.slos
    assert second.problems == []
    assert second.slos == first.slos
    assert second.services == first.services
    # and the export is a fixed point from then on
    assert export_openslo(second.slos, second.services) == export_openslo(first.slos, first.services)


def test_it_gives_the_original_names_back() -> None:
    exported = export_openslo(*_import_ok(fixture("kitchen-sink.yaml")))
    documents = list(yaml.safe_load_all(exported))

    assert [d["kind"] for d in documents] == ["Service", "SLO", "SLO"]  # services first
    assert [d["metadata"]["name"] for d in documents] == [
        "Checkout_API",
        "Checkout_Availability",
        "Checkout_Availability-contract",
    ]
    slo = documents[1]
    assert list(slo) == ["apiVersion", "kind", "metadata", "spec"]
    assert list(slo["spec"]) == ["service", "indicator", "timeWindow", "budgetingMethod", "objectives"]
    assert slo["spec"]["service"] == "Checkout_API"
    assert slo["metadata"]["labels"] == {"team": "payments", "regions": ["eu", "us"]}
    assert slo["metadata"]["annotations"] == {
        "example.com/dashboard": "https://grafana.example.com/d/checkout"
    }
    assert slo["spec"]["objectives"] == [{"displayName": "Internal", "target": 0.9995}]
    assert slo["spec"]["indicator"]["metadata"]["name"] == "checkout-errors"
    ratio = slo["spec"]["indicator"]["spec"]["ratioMetric"]
    assert ratio["bad"]["metricSource"]["metricSourceRef"] == "prom"
    assert ratio["total"]["metricSource"]["metricSourceRef"] == "prom"


def _import_ok(text: str) -> tuple[list[SloSpec], list[dict[str, Any]]]:
    result = import_openslo(text)
    assert result.problems == [], messages(result.problems)
    return result.slos, result.services


NATIVE = {
    "name": "vision-fast",
    "service": "shelf-vision",
    "tier": "edge",
    "sli": {"kind": "latency", "threshold_ms": 250},
    "objective": 99.5,
    "window": {"type": "rolling", "days": 30},
    "min_valid_events": 100,
    "alert_tiers": [{"severity": "page", "budget_percent": 2, "long_window_s": 3600, "short_window_s": 300}],
    "labels": {"team": "vision"},
}

CONTRACT = SimpleNamespace(
    good='sum(gateway_request_duration_seconds_bucket{service="shelf-vision", le="0.25"})',
    bad=None,
    total='sum(gateway_request_duration_seconds_count{service="shelf-vision"})',
)


@pytest.mark.parametrize(
    "queries_for",
    [lambda spec: CONTRACT, lambda spec: (None, "sum(bad_total)", "sum(all_total)")],
    ids=["contract-object", "tuple"],
)
def test_it_exports_native_kinds_with_contract_queries_and_gets_them_back(queries_for: Any) -> None:
    spec = SloSpec.model_validate(NATIVE)

    text, report = export_openslo_with_report([spec], queries_for=queries_for)

    assert report == []
    [document] = yaml.safe_load_all(text)
    ratio = document["spec"]["indicator"]["spec"]["ratioMetric"]
    assert ratio["counter"] is True and ratio["total"]["metricSource"]["type"] == "Prometheus"
    assert document["metadata"]["annotations"][ANNOTATION_SLI] == '{"kind": "latency", "threshold_ms": 250.0}'
    again = import_openslo(text)
    assert again.problems == [] and again.slos == [spec]
    assert "queries ignored" in messages(again.unsupported)  # said, not silent


def test_it_refuses_to_export_a_native_kind_without_queries() -> None:
    spec = SloSpec.model_validate(NATIVE)

    text, report = export_openslo_with_report([spec])

    assert list(yaml.safe_load_all(text)) == []
    assert [(p.path, p.severity) for p in report] == [("slos[0]", "error")]
    with pytest.raises(ValueError, match="needs queries_for"):
        export_openslo([spec])


def test_it_warns_when_export_drops_a_timeslice_target() -> None:
    spec = SloSpec.model_validate(
        {**_custom_spec(), "budgeting_method": "occurrences", "timeslice_target": 0.9}
    )

    text, report = export_openslo_with_report([spec])

    assert [(p.path, p.severity) for p in report] == [("slos[0].timeslice_target", "warning")]
    assert "timeSliceTarget" not in text


def _custom_spec() -> dict[str, Any]:
    return {
        "name": "vision-ok",
        "service": "shelf-vision",
        "sli": {"kind": "custom", "good_query": "good_total", "total_query": "all_total"},
        "objective": 99.9,
        "window": {"type": "rolling", "days": 28},
    }


# ------------------------------------------------------------------------------ property: round trip

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
# any text: control characters, NEL and line separators included (the exporter double-quotes those);
# not NUL, which PostgreSQL cannot store and every input path refuses (controlplane.safeload)
characters = st.characters(codec="utf-8", exclude_characters="\x00")
text = st.text(characters, max_size=30)
names = st.from_regex(NAME_RE, fullmatch=True)
# counter queries in the forms slo.promql pulls exactly: any matcher values, several wrappings
metric_names = st.from_regex(r"m_[a-zA-Z0-9_:]{0,20}", fullmatch=True)
label_names = st.from_regex(r"l_[a-zA-Z0-9_]{0,10}", fullmatch=True)
matchers = st.one_of(
    st.builds(
        lambda k, op, v: f"{k}{op}{json.dumps(v, ensure_ascii=False)}",
        label_names,
        st.sampled_from(["=", "!="]),
        text,
    ),
    st.builds(
        lambda k, op, v: f"{k}{op}{json.dumps(v)}",
        label_names,
        st.sampled_from(["=~", "!~"]),
        st.sampled_from(["5..", "ok|error", ".+", "a\\.b"]),
    ),
)
selectors = st.builds(
    lambda name, ms: f"{name}{{{', '.join(ms)}}}" if ms else name,
    metric_names,
    st.lists(matchers, max_size=3),
)
queries = st.builds(
    lambda form, sel: form.format(sel=sel),
    st.sampled_from(
        [
            "{sel}",
            "sum(rate({sel}[5m]))",
            "sum by (route) (increase({sel}[1h]))",
            "sum(irate({sel}[2m])) without (pod)",
            "sum(sum by (a) (rate({sel}[30s])))",
        ]
    ),
    selectors,
)
label_keys = text.filter(lambda key: not key.strip().startswith("openslo."))


@st.composite
def custom_specs(draw: st.DrawFn) -> SloSpec:
    method = draw(st.sampled_from(["occurrences", "timeslices", "ratio_timeslices"]))
    numerator = draw(st.sampled_from(["good_query", "bad_query"]))
    window = draw(
        st.one_of(
            st.builds(lambda days: {"type": "rolling", "days": days}, st.integers(1, 400)),
            st.builds(
                lambda unit, zone: {"type": "calendar", "unit": unit, "timezone": zone},
                st.sampled_from(["week", "month"]),
                st.sampled_from(ZONES),
            ),
        )
    )
    alert_tier = st.fixed_dictionaries(
        {
            "severity": st.sampled_from(["page", "ticket"]),
            "budget_percent": st.floats(0, 100, exclude_min=True),
            "long_window_s": st.integers(1, 10**7),
            "short_window_s": st.integers(1, 10**7),
        }
    )
    data = {
        "name": draw(names),
        "service": draw(names),
        "display_name": draw(text),
        "description": draw(text),
        "tier": draw(st.none() | st.sampled_from(TIERS)),
        "sli": {"kind": "custom", numerator: draw(queries), "total_query": draw(queries)},
        "objective": draw(st.floats(0, 100, exclude_min=True, exclude_max=True)),
        "window": window,
        "budgeting_method": method,
        "timeslice_target": draw(st.floats(0, 1, exclude_min=True)) if method == "timeslices" else None,
        "min_valid_events": draw(st.integers(1, 10**9)),
        "alert_tiers": draw(st.none() | st.lists(alert_tier, max_size=3)),
        "labels": draw(st.dictionaries(label_keys, text, max_size=4)),
    }
    return SloSpec.model_validate(data)


@given(st.lists(custom_specs(), max_size=3, unique_by=lambda spec: spec.name))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_it_round_trips_any_spec_with_a_custom_sli(specs: list[SloSpec]) -> None:
    text, report = export_openslo_with_report(specs)
    result = import_openslo(text)

    assert report == []
    assert result.problems == [], messages(result.problems)
    assert result.unsupported == [], messages(result.unsupported)
    assert result.slos == specs


# ------------------------------------------------------------------------------------------ errors


def test_it_reports_invalid_yaml_with_its_line() -> None:
    result = import_openslo("apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: [unclosed\n")

    assert result.slos == [] and len(result.problems) == 1
    [problem] = result.problems
    assert problem.path == "documents" and "line 5" in problem.message


def test_it_refuses_duplicate_keys_with_their_line() -> None:
    [problem] = import_openslo("apiVersion: openslo/v1\nkind: SLO\nkind: Service\n").problems

    assert "duplicate key 'kind'" in problem.message and "line 3" in problem.message


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("- just\n- a list\n", "documents[0][1]", "must be a mapping"),
        ("hello\n", "documents[0]", "must be a mapping"),
        ("---\nkind: SLO\n", "documents[0].apiVersion", "required"),
        (
            "apiVersion: openslo/v1alpha\nkind: SLO\n",
            "documents[0].apiVersion",
            "openslo/v1alpha is not supported",
        ),
        ("apiVersion: openslo.com/v2alpha\nkind: SLO\n", "documents[0].apiVersion", "unsupported apiVersion"),
        ("apiVersion: openslo/v1\nkind: Thing\n", "documents[0].kind", "unknown kind 'Thing'"),
        ("apiVersion: openslo/v1\nkind: SLO\n", "documents[0].metadata", "required"),
        ("apiVersion: openslo/v1\nkind: SLO\nmetadata: {}\n", "documents[0].metadata.name", "required"),
        ("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\n", "documents[0].spec", "required"),
        ("a: !!int nope\n", "documents", "invalid YAML value"),
        ("a: 2022-02-30\n", "documents[0].apiVersion", "required"),  # a bad date stays text, no crash
    ],
)
def test_it_reports_broken_documents(text: str, path: str, message: str) -> None:
    result = import_openslo(text)

    assert result.slos == []
    assert any(p.path == path and message in p.message for p in result.problems), messages(result.problems)


@pytest.mark.parametrize(
    ("overrides", "path", "message"),
    [
        ({"service": None}, "spec.service", "required"),
        ({"indicator": None}, "spec.indicator", "required"),
        ({"timeWindow": None}, "spec.timeWindow", "required"),
        ({"budgetingMethod": None}, "spec.budgetingMethod", "required"),
        ({"budgetingMethod": "Sometimes"}, "spec.budgetingMethod", "unknown budgeting method"),
        ({"objectives": None}, "spec.objectives", "required"),
        ({"objectives": []}, "spec.objectives", "non-empty"),
        ({"objectives": [{"target": 1.5}]}, "spec.objectives[0].target", "between 0 and 1"),
        ({"objectives": [{"target": "high"}]}, "spec.objectives[0].target", "between 0 and 1"),
        ({"objectives": [{"targetPercent": 100}]}, "spec.objectives[0].targetPercent", "between 0 and 100"),
        ({"objectives": [{"displayName": "x"}]}, "spec.objectives[0].target", "required"),
        (
            {"objectives": [{"target": 0.99, "targetPercent": 95}]},
            "spec.objectives[0].targetPercent",
            "not both",
        ),
        (
            {"timeWindow": [{"duration": "1h", "isRolling": True}]},
            "spec.timeWindow[0].duration",
            "whole days",
        ),
        (
            {"timeWindow": [{"duration": "1M", "isRolling": True}]},
            "spec.timeWindow[0].duration",
            "no fixed length",
        ),
        (
            {"timeWindow": [{"duration": "500d", "isRolling": True}]},
            "spec.timeWindow[0].duration",
            "400 days",
        ),
        ({"timeWindow": [{"duration": "28 days"}]}, "spec.timeWindow[0].duration", "is not a duration"),
        (
            {"timeWindow": [{"duration": "1Q", "calendar": {"timeZone": "UTC"}}]},
            "spec.timeWindow[0].duration",
            "one week (1w) or one month (1M)",
        ),
        (
            {"timeWindow": [{"duration": "1M", "calendar": {"timeZone": "Mars/Olympus"}}]},
            "spec.timeWindow[0].calendar.timeZone",
            "unknown time zone",
        ),
        ({"timeWindow": "28d"}, "spec.timeWindow", "a list"),
        ({"budgetingMethod": "Timeslices"}, "spec.objectives[0].timeSliceTarget", "required with Timeslices"),
        ({"indicatorRef": "missing", "indicator": None}, "spec.indicatorRef", "no SLI named 'missing'"),
        ({"indicatorRef": "x"}, "spec.indicatorRef", "not both"),
    ],
)
def test_it_reports_invalid_slos_with_a_path_into_the_document(
    overrides: dict[str, Any], path: str, message: str
) -> None:
    result = import_openslo(dump(slo_doc(**overrides)))

    assert result.slos == []
    assert any(p.path == f"documents[0].{path}" and message in p.message for p in result.problems), messages(
        result.problems
    )


def _ratio(**ratio: Any) -> dict[str, Any]:
    return {"metadata": {"name": "i"}, "spec": {"ratioMetric": ratio}}


def _source(query: Any = "x_total", source_type: str = "Prometheus") -> dict[str, Any]:
    return {"metricSource": {"type": source_type, "spec": {"query": query}}}


@pytest.mark.parametrize(
    ("indicator", "path", "message"),
    [
        (_ratio(good=_source(), bad=_source(), total=_source()), "ratioMetric", "exactly one of good or bad"),
        (_ratio(total=_source()), "ratioMetric", "exactly one of good or bad"),
        (_ratio(good=_source()), "ratioMetric.total", "required"),
        (_ratio(counter=False, good=_source(), total=_source()), "ratioMetric.counter", "only counters"),
        (_ratio(rawType="success", raw=_source()), "ratioMetric.raw", "not supported"),
        (
            _ratio(good=_source(query=""), total=_source()),
            "ratioMetric.good.metricSource.spec.query",
            "non-empty",
        ),
        (
            _ratio(good={"metricSource": {"type": "Prometheus"}}, total=_source()),
            "ratioMetric.good.metricSource.spec",
            "required",
        ),
        ({"metadata": {"name": "i"}, "spec": {}}, "", "exactly one of ratioMetric or thresholdMetric"),
    ],
)
def test_it_reports_invalid_indicators(indicator: dict[str, Any], path: str, message: str) -> None:
    result = import_openslo(dump(slo_doc(indicator=indicator)))

    where = "documents[0].spec.indicator.spec" + (f".{path}" if path else "")
    assert result.slos == []
    assert any(p.path == where and message in p.message for p in result.problems), messages(result.problems)


def test_it_needs_a_value_for_a_threshold() -> None:
    indicator = {"spec": {"thresholdMetric": _source("request_seconds")}}
    result = import_openslo(dump(slo_doc(indicator=indicator)))

    assert paths(result.problems) == ["documents[0].spec.objectives[0].value"]


def test_it_refuses_a_threshold_it_cannot_express() -> None:
    indicator = {"metadata": {"name": "lag"}, "spec": {"thresholdMetric": _source("lag_seconds")}}
    result = import_openslo(
        dump(slo_doc(indicator=indicator, objectives=[{"op": "gt", "value": 5, "target": 0.9}]))
    )

    assert [(p.path, "cannot be expressed" in p.message) for p in result.problems] == [
        ("documents[0].spec.objectives[0].op", True)
    ]


def test_it_imports_an_sli_by_reference_and_refuses_duplicate_names() -> None:
    sli = {
        "apiVersion": "openslo/v1",
        "kind": "SLI",
        "metadata": {"name": "ok"},
        "spec": {"ratioMetric": {"good": _source("g_total"), "total": _source("t_total")}},
    }
    document = slo_doc(indicator=None, indicatorRef="ok")
    result = import_openslo(dump(sli, document, document))

    [spec] = result.slos
    assert spec.sli.good_query == "g_total" and spec.labels[LABEL_INDICATOR_NAME] == "ok"
    assert [(p.path, p.message) for p in result.problems] == [
        ("documents[2].metadata.name", "SLO name 'vision-ok' is already used by documents[1]")
    ]


def test_it_keeps_the_good_slos_when_one_is_broken() -> None:
    broken = slo_doc(objectives=[{"target": 2}])
    broken["metadata"]["name"] = "broken"
    result = import_openslo(dump(slo_doc(), broken))

    assert [s.name for s in result.slos] == ["vision-ok"]
    assert paths(result.problems) == ["documents[1].spec.objectives[0].target"]
    assert not result.ok


def test_it_warns_about_unknown_fields_and_reserved_labels() -> None:
    document = slo_doc(surprise=1, objectives=[{"target": 0.99, "timeSliceWindow": "5m", "extra": True}])
    document["metadata"]["labels"] = {"openslo.name": "sneaky", "nested": {"a": 1}, "ok": 3}
    result = import_openslo(dump(document))

    assert result.problems == []
    assert result.slos[0].labels["ok"] == "3"
    assert set(paths(result.unsupported)) == {
        "documents[0].spec.surprise",
        "documents[0].spec.objectives[0].extra",
        "documents[0].spec.objectives[0].timeSliceWindow",
        "documents[0].metadata.labels.openslo.name",
        "documents[0].metadata.labels.nested",
    }


def test_it_maps_budgeting_and_timeslices() -> None:
    objectives = [{"targetPercent": 99, "timeSliceTarget": 0.95, "timeSliceWindow": 1}]
    result = import_openslo(dump(slo_doc(budgetingMethod="Timeslices", objectives=objectives)))

    assert result.problems == [] and result.unsupported == []
    [spec] = result.slos
    assert (spec.budgeting_method, spec.timeslice_target, spec.objective) == ("timeslices", 0.95, 99.0)


@pytest.mark.parametrize(
    ("duration", "days"), [("28d", 28), ("4w", 28), ("720h", 30), ("1440m", 1), ("400d", 400)]
)
def test_it_maps_rolling_windows_to_days(duration: str, days: int) -> None:
    [spec] = import_openslo(dump(slo_doc(timeWindow=[{"duration": duration, "isRolling": True}]))).slos

    assert spec.window.type == "rolling" and spec.window.days == days
