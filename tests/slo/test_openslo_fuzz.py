"""OpenSLO import never raises: any text, and mutated documents (Hypothesis)."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from slo.openslo import export_openslo_with_report, import_openslo
from tests.slo.test_openslo import CONTRACT, fixture, messages, slo_doc

# ------------------------------------------------------------------------------------------- fuzz


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_it_never_raises_on_any_text(text: str) -> None:
    result = import_openslo(text)

    assert all(p.path.startswith("documents") for p in result.problems + result.unsupported)
    assert "internal error" not in messages(result.problems)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _locations(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        out.extend(_locations(child, (*prefix, key)))
    return out


BASES = [slo_doc(), *yaml.safe_load_all(fixture("kitchen-sink.yaml"))]


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_it_never_raises_on_mutated_documents(data: st.DataObject) -> None:
    documents = yaml.safe_load(yaml.safe_dump(BASES))  # a deep copy
    for _ in range(data.draw(st.integers(1, 3))):
        location = data.draw(st.sampled_from(_locations(documents)[1:]))
        parent = documents
        for key in location[:-1]:
            parent = parent[key]
        parent[location[-1]] = data.draw(yaml_values)

    result = import_openslo(yaml.safe_dump_all(documents))

    assert "internal error" not in messages(result.problems)
    for spec in result.slos:  # whatever got through is a valid spec that exports
        export_openslo_with_report([spec], queries_for=lambda s: CONTRACT)
