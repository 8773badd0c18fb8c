"""Turn pydantic errors into `Problem` values with dotted paths like `rules[2].chain[1].route`."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from slo.spec import Problem


def loc_to_path(loc: tuple[Any, ...], root: str) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or part.startswith("function-")):
            # pydantic names union branches and validators in loc; they are not fields
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or root


def _message(err: Any) -> str:
    loc = err["loc"]
    if err["type"] == "literal_error" and loc and loc[-1] == "route":
        return (
            f"unknown route {err['input']!r}; expected one of local, cache, private_cloud, public_cloud "
            "(failure is not a hop: use on_exhausted)"
        )
    if err["type"] == "extra_forbidden":
        return "unknown field"
    return str(err["msg"]).removeprefix("Value error, ")


def problems_from_validation_error(exc: ValidationError, root: str = "policy") -> list[Problem]:
    return [Problem(loc_to_path(tuple(err["loc"]), root), _message(err)) for err in exc.errors()]
