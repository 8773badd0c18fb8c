from __future__ import annotations

from slo.diff import Change, diff_documents


def test_it_finds_nothing_in_equal_documents() -> None:
    doc = {"a": [1, {"b": 2}], "c": None}
    assert diff_documents(doc, {"c": None, "a": [1, {"b": 2}]}) == []


def test_it_reports_added_removed_and_changed_keys_with_paths() -> None:
    before = {"objective": 99.5, "sli": {"kind": "latency", "threshold_ms": 150}, "labels": {"team": "a"}}
    after = {"objective": 99.9, "sli": {"kind": "latency", "threshold_ms": 200}, "tier": "edge"}
    assert diff_documents(before, after) == [
        Change("labels", "removed", before={"team": "a"}),
        Change("objective", "changed", 99.5, 99.9),
        Change("sli.threshold_ms", "changed", 150, 200),
        Change("tier", "added", after="edge"),
    ]


def test_it_matches_named_list_items_by_name() -> None:
    before = {
        "rules": [
            {"name": "low", "chain": [{"route": "cache", "timeout_ms": 10}]},
            {"name": "default", "chain": [{"route": "local", "timeout_ms": 40}]},
        ]
    }
    after = {
        "rules": [
            {"name": "hot", "chain": []},
            {"name": "low", "chain": [{"route": "cache", "timeout_ms": 20}]},
            {"name": "default", "chain": [{"route": "local", "timeout_ms": 40}]},
        ]
    }
    assert diff_documents(before, after) == [
        Change("rules[name=low].chain[0].timeout_ms", "changed", 10, 20),
        Change("rules[name=hot]", "added", after={"name": "hot", "chain": []}),
    ]


def test_it_reports_a_reordering_of_named_items() -> None:
    before = {"rules": [{"name": "a"}, {"name": "b"}]}
    assert diff_documents(before, {"rules": [{"name": "b"}, {"name": "a"}]}) == [
        Change("rules", "changed", ["a", "b"], ["b", "a"])
    ]


def test_it_compares_unnamed_lists_by_position() -> None:
    assert diff_documents({"key": ["a", "b", "c"]}, {"key": ["a", "x"]}) == [
        Change("key[1]", "changed", "b", "x"),
        Change("key[2]", "removed", before="c"),
    ]


def test_it_treats_type_changes_as_changes_but_not_int_vs_float() -> None:
    assert diff_documents({"v": 1}, {"v": 1.0}) == []
    assert diff_documents({"v": 1}, {"v": True}) == [Change("v", "changed", 1, True)]
    assert diff_documents({"v": [1]}, {"v": {"0": 1}}) == [Change("v", "changed", [1], {"0": 1})]
    assert diff_documents(1, 2) == [Change("$", "changed", 1, 2)]
    assert str(Change("x", "changed", 1, 2)) == "~ x: 1 -> 2"
