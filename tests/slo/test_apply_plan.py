"""The SLOs-as-code plan over plain data: no database, no Django."""

from __future__ import annotations

from slo.apply_plan import Current, plan_apply, plan_differs, plan_summary

A = {"name": "a", "service": "svc", "objective": 99.0}
B = {"name": "b", "service": "svc", "objective": 95.0}


def _kinds(actions):
    return [(a.kind, a.key) for a in actions]


def test_a_new_directory_creates_everything_and_differs():
    actions = plan_apply({"svc/a": A, "svc/b": B}, {}, source="repo")
    assert _kinds(actions) == [("create", "svc/a"), ("create", "svc/b")]
    assert plan_differs(actions)


def test_the_same_documents_managed_by_the_source_are_unchanged():
    current = {"svc/a": Current(A, "repo"), "svc/b": Current(B, "repo")}
    actions = plan_apply({"svc/a": A, "svc/b": B}, current, source="repo")
    assert _kinds(actions) == [("unchanged", "svc/a"), ("unchanged", "svc/b")]
    assert not plan_differs(actions)
    assert plan_summary(actions)["unchanged"] == 2


def test_a_changed_objective_is_an_update_with_its_diff_line():
    actions = plan_apply({"svc/a": {**A, "objective": 99.5}}, {"svc/a": Current(A, "repo")}, source="repo")
    assert _kinds(actions) == [("update", "svc/a")]
    assert [(c.path, c.before, c.after) for c in actions[0].changes] == [("objective", 99.0, 99.5)]
    assert actions[0].line() == "update svc/a: ~ objective: 99.0 -> 99.5"


def test_an_slo_made_outside_the_directory_is_refused_unless_adopted():
    current = {"svc/a": Current(A, "")}
    refused = plan_apply({"svc/a": A}, current, source="repo")
    assert _kinds(refused) == [("refuse", "svc/a")] and "adopt" in refused[0].reason
    adopted = plan_apply({"svc/a": A}, current, source="repo", adopt=True)
    assert _kinds(adopted) == [("update", "svc/a")] and adopted[0].adopted and adopted[0].changes == []
    other = plan_apply({"svc/a": A}, {"svc/a": Current(A, "other-repo")}, source="repo")
    assert other[0].kind == "refuse" and "'other-repo'" in other[0].reason


def test_only_slos_of_this_source_are_pruned_and_only_with_prune():
    current = {
        "svc/a": Current(A, "repo"),
        "svc/b": Current(B, "repo"),
        "svc/c": Current(B, ""),
        "svc/d": Current(B, "other"),
    }
    kept = plan_apply({"svc/a": A}, current, source="repo")
    assert _kinds(kept) == [("unchanged", "svc/a"), ("orphan", "svc/b")]
    assert plan_differs(kept)
    pruned = plan_apply({"svc/a": A}, current, source="repo", prune=True)
    assert _kinds(pruned) == [("unchanged", "svc/a"), ("prune", "svc/b")]


def test_an_archived_slo_of_the_same_name_is_created_back_and_says_so():
    actions = plan_apply({"svc/a": A}, {}, source="repo", archived={"svc/a"})
    assert _kinds(actions) == [("create", "svc/a")]
    assert actions[0].line() == "create svc/a: brings back the archived SLO of this name"
