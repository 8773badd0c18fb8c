"""Untrusted JSON and YAML text to plain data, within limits (pure: no Django).

Every request body and uploaded document is read here, so the limits hold in one place:
- nesting at most MAX_DEPTH levels (Python's parsers recurse: 100,000 `[` would end in a
  RecursionError, a 500 instead of a 400);
- no NUL character in any string or key (PostgreSQL refuses it in text and jsonb, again a 500);
- YAML only: no aliases (`*name` shares a node, and a few nested aliases expand to gigabytes once
  serialised), no merge keys (`<<`, an alias in disguise), at most MAX_DOCUMENTS documents and
  MAX_NODES nodes (PyYAML's pure-Python parser needs about 30 s for 50,000 tiny documents, so
  the stream is checked with libyaml's event parser before anything is built).

A refusal raises InputRefused, whose message says where (a JSON path or a YAML line) and why.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

MAX_DEPTH = 64
MAX_DOCUMENTS = 1000
MAX_NODES = 100_000

# libyaml when the wheel has it (it does on every platform we ship); the pure-Python classes
# behave the same, only slower.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class InputRefused(ValueError):
    """The text is not acceptable input; str(exc) is one readable line with its location."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


# --------------------------------------------------------------------------------------- JSON


def check_plain(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse `value` (parsed JSON, form data) nested deeper than `max_depth` or holding a NUL.

    Iterative, so a value built by anything else (a YAML loader, a test) is checked safely too."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InputRefused("text must not contain the NUL character (\\u0000)", path)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise InputRefused(f"nested deeper than {max_depth} levels", path)
            if isinstance(item, dict):
                for key, child in item.items():
                    child_path = f"{path}.{key}" if path else str(key)
                    if isinstance(key, str) and "\x00" in key:
                        raise InputRefused("keys must not contain the NUL character (\\u0000)", path)
                    stack.append((child, child_path, depth + 1))
            else:
                stack.extend((child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item))


def load_json(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text (NaN and Infinity refused) and check it with `check_plain`."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise InputRefused(f"nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise InputRefused(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:  # NaN, a number with too many digits, undecodable bytes
        raise InputRefused(f"invalid JSON: {exc}") from None
    check_plain(value, max_depth=max_depth)
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# --------------------------------------------------------------------------------------- YAML


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe constructors; duplicate keys and merge keys refused; timestamps stay text (a
    `2025-03-01` is a string in JSON, and an impossible date must be a problem, not a crash)."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "merge keys (<<) are not accepted",
                    key_node.start_mark,
                )
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key_node.value!r}",
                        key_node.start_mark,
                    )
                seen.add(key_node.value)
        super().flatten_mapping(node)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_Loader.add_constructor(_TIMESTAMP_TAG, lambda loader, node: loader.construct_scalar(node))


def _where(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _check_events(text: str, *, max_documents: int, max_nodes: int, max_depth: int) -> None:
    """One pass over libyaml's events: cheap, and nothing is built before the limits hold."""
    documents = nodes = depth = 0
    events: Iterator[Any] = yaml.parse(text, Loader=_BaseLoader)
    for event in events:
        if isinstance(event, yaml.AliasEvent):
            raise InputRefused(
                f"invalid YAML{_where(event.start_mark)}: aliases (*{event.anchor}) are not accepted"
            )
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > max_documents:
                raise InputRefused(
                    f"invalid YAML{_where(event.start_mark)}: more than {max_documents} documents"
                )
        elif isinstance(event, yaml.ScalarEvent | yaml.SequenceStartEvent | yaml.MappingStartEvent):
            nodes += 1
            if nodes > max_nodes:
                raise InputRefused(f"invalid YAML{_where(event.start_mark)}: more than {max_nodes} values")
            if isinstance(event, yaml.ScalarEvent):
                if "\x00" in event.value:
                    raise InputRefused(
                        f"invalid YAML{_where(event.start_mark)}: text must not contain the NUL character"
                    )
            else:
                depth += 1
                if depth > max_depth:
                    raise InputRefused(
                        f"invalid YAML{_where(event.start_mark)}: nested deeper than {max_depth} levels"
                    )
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            depth -= 1


def load_yaml_documents(
    text: str, *, max_documents: int = MAX_DOCUMENTS, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH
) -> list[Any]:
    """Every document of a YAML stream (JSON is YAML, so JSON text works too), or InputRefused."""
    try:
        _check_events(text, max_documents=max_documents, max_nodes=max_nodes, max_depth=max_depth)
        return list(yaml.load_all(text, Loader=_Loader))  # noqa: S506 - _Loader is a safe loader
    except InputRefused:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise InputRefused(
            f"invalid YAML{_where(mark)}: {exc.problem or exc.context or 'parse error'}"
        ) from None
    except yaml.YAMLError as exc:
        raise InputRefused(
            f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else 'parse error'}"
        ) from None
    except (ValueError, TypeError, OverflowError) as exc:
        # the safe constructors raise these for bad explicit tags (`!!int x`, `!!binary ?`)
        raise InputRefused(f"invalid YAML value: {exc}") from None
    except RecursionError:
        raise InputRefused(f"invalid YAML: nested deeper than {max_depth} levels") from None


def load_yaml(text: str, **limits: int) -> Any:
    """The single document of a YAML (or JSON) text; an empty text is None."""
    documents = load_yaml_documents(text, **limits)
    if len(documents) > 1:
        raise InputRefused("invalid YAML: expected one document, found several (---)")
    return documents[0] if documents else None
