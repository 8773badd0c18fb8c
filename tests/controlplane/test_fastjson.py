"""controlplane.lib.fastjson: orjson's speed, the standard library's results, value for value and
refusal for refusal."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.lib import fastjson

documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


def _outcome(parse: Any, data: bytes) -> Any:
    try:
        return ("value", parse(data))
    except (ValueError, RecursionError) as exc:
        return ("error", type(exc), str(exc))


@settings(max_examples=300, deadline=None)
@given(documents)
def test_it_returns_what_json_returns(document: Any) -> None:
    data = json.dumps(document).encode()
    value = fastjson.loads(data)
    assert value == json.loads(data)
    assert json.dumps(value) == json.dumps(json.loads(data))  # types too (1 vs 1.0, key order)


@pytest.mark.parametrize(
    "data",
    [
        b"NaN",
        b"[Infinity, -Infinity]",
        b'{"a": 1e999}',
        str(2**80).encode(),
        b'"\\ud800"',
        '{"a": 1}'.encode("utf-16"),
        b"[" * 5000 + b"]" * 5000,
        b'{"a": 1, "a": 2}',
        b"0.1",
        b"1e-400",
        b"-0.0",
        b"",
        b"{,}",
        b"\xef\xbb\xbf{}",
        b'{"a":"\xff"}',
    ],
)
def test_where_orjson_refuses_json_decides(data: bytes) -> None:
    ours, theirs = _outcome(fastjson.loads, data), _outcome(json.loads, data)
    if ours[0] == "value" and isinstance(ours[1], float) and math.isnan(ours[1]):
        assert theirs[0] == "value" and math.isnan(theirs[1])
    else:
        assert ours == theirs
