"""JSON request bodies parsed with orjson, with exactly the results of the standard library.

orjson parses a large telemetry batch in about half the time of `json.loads`. Where the two could
differ it refuses the document (NaN and Infinity literals, integers beyond 64 bits, lone surrogate
escapes, nesting deeper than its limit, encodings other than UTF-8), and `json.loads` then parses
it as before: every body means what it meant, and every refusal raises what it raised.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes) -> Any:
    """`json.loads(data)`, faster. Raises ValueError (or RecursionError) as `json.loads` does."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
