"""PromQL counter queries, understood rather than pasted (pure: no Django).

The exact pull (slo.prom) reads every raw sample of the counter series a plain selector matches and
sums their per-minute increases itself. The queries people write in OpenSLO, Sloth or Pyrra wrap such
a selector: `sum(rate(http_requests_total{code!~"5.."}[5m]))`, `sum by (route) (increase(x[1h]))`.
Their per-minute count is the per-minute increase of the series the inner selector matches, summed, so
`counter_selector` rewrites them to that selector and the pull stays exact:

    sel                                     a plain instant-vector selector, any matchers
    rate(sel[w]) | increase(sel[w]) | irate(sel[w])
    sum(X) | sum by (...) (X) | sum without (...) (X)   X one of the forms above (nested sums too)

with parentheses anywhere. Everything else (arithmetic, `histogram_quantile`, `*_over_time`,
aggregations other than sum, `offset`/`@` modifiers, subqueries) has no exact per-minute count, and
`counter_selector` refuses it with the reason and, where one can be read off the query, an exact form
to use instead (`UnsupportedQuery.suggestion`).

We cannot tell a counter from a gauge by its query: a plain selector is taken as the counter the SLI
says it is (OpenSLO `counter: true`).
"""

from __future__ import annotations

import json
from typing import Any

import promql_parser

_COUNTER_FUNCTIONS = ("rate", "increase", "irate")
_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
MAX_QUERY_LENGTH = 10_000


class UnsupportedQuery(Exception):  # noqa: N818 -- a value as much as an error
    """The query has no exact per-minute count: why, and an exact form to use instead (or "")."""

    def __init__(self, reason: str, suggestion: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.suggestion = suggestion

    def __str__(self) -> str:
        return f"{self.reason}; use instead: {self.suggestion}" if self.suggestion else self.reason


def counter_selector(query: str) -> str:
    """The plain selector whose summed per-minute increases are `query`'s count; raises UnsupportedQuery."""
    if not isinstance(query, str) or not query.strip():
        raise UnsupportedQuery("empty query")
    if len(query) > MAX_QUERY_LENGTH:
        raise UnsupportedQuery(f"longer than {MAX_QUERY_LENGTH} characters")
    try:
        expr = promql_parser.parse(query)
    except (ValueError, TypeError) as exc:  # the parser reports syntax errors as ValueError
        raise UnsupportedQuery(f"not valid PromQL: {' '.join(str(exc).split())[:300]}") from None
    selector = _counter(expr, query)
    # a plain selector is given back as written; a wrapped one is rendered from the parse
    return query.strip() if selector is expr else render_selector(selector)


def query_problem(query: str) -> str | None:
    """Why `query` cannot be pulled exactly (reason and suggested form), or None when it can."""
    try:
        counter_selector(query)
    except UnsupportedQuery as exc:
        return str(exc)
    return None


def _counter(expr: Any, query: str) -> Any:
    kind = type(expr).__name__
    if kind == "ParenExpr":
        return _counter(expr.expr, query)
    if kind == "VectorSelector":
        _no_modifiers(expr, query)
        return expr
    if kind == "MatrixSelector":
        raise UnsupportedQuery(
            "a range vector is not a count", f"increase({render_selector(expr.vector_selector)}[5m])"
        )
    if kind == "Call":
        name = expr.func.name
        if name in _COUNTER_FUNCTIONS and len(expr.args) == 1:
            arg = expr.args[0]
            if type(arg).__name__ == "SubqueryExpr":
                raise UnsupportedQuery(
                    f"{name}() over a subquery has no exact per-minute count", _suggest_from(arg, query)
                )
            if type(arg).__name__ == "MatrixSelector":
                _no_modifiers(arg.vector_selector, query)
                return arg.vector_selector
        if name == "histogram_quantile":
            raise UnsupportedQuery(
                "histogram_quantile gives a latency quantile, not a count of good events: count the "
                "requests at or under a threshold (good: the bucket with that `le`, total: the _count)",
                _suggest_quantile(expr, query),
            )
        raise UnsupportedQuery(
            f"{name}() gives no exact per-minute count (only rate, increase or irate of a counter, "
            "optionally summed, do)",
            _suggest_from(expr, query),
        )
    if kind == "AggregateExpr":
        op = str(expr.op)
        if op != "sum":
            raise UnsupportedQuery(
                f"{op}() does not add up events: only sum() of counters does", _suggest_from(expr, query)
            )
        return _counter(expr.expr, query)
    if kind == "BinaryExpr":
        raise UnsupportedQuery(
            f"arithmetic ({expr.op}) has no exact per-minute count: give the numerator and the "
            "denominator as separate good (or bad) and total counter queries",
            _suggest_from(expr, query),
        )
    if kind in ("NumberLiteral", "StringLiteral"):
        raise UnsupportedQuery("a constant is not a count")
    raise UnsupportedQuery(
        f"{_KIND_NAMES.get(kind, kind)} has no exact per-minute count", _suggest_from(expr, query)
    )


_KIND_NAMES = {"SubqueryExpr": "a subquery", "UnaryExpr": "a negation"}


def _no_modifiers(selector: Any, query: str) -> None:
    if selector.offset is not None or selector.at is not None:
        raise UnsupportedQuery(
            "offset and @ modifiers shift the query in time: each minute is pulled at its own time",
            f"sum(rate({render_selector(selector)}[5m]))",
        )
    if selector.matchers.or_matchers:
        raise UnsupportedQuery("`or` inside a selector is not supported: give one selector")


def render_selector(selector: Any) -> str:
    """A vector selector as PromQL text, with its matchers quoted and escaped."""
    matchers = ", ".join(
        f"{m.name}{_OPS[str(m.op).rsplit('.', 1)[-1]]}{json.dumps(m.value, ensure_ascii=False)}"
        for m in selector.matchers.matchers
        if not (
            selector.name
            and m.name == "__name__"
            and str(m.op).endswith(".Equal")
            and m.value == selector.name
        )
    )
    name = selector.name or ""
    return f"{name}{{{matchers}}}" if matchers or not name else name


def _selectors(expr: Any) -> list[Any]:
    out: list[Any] = []

    def visit(node: Any) -> None:
        kind = type(node).__name__
        if kind == "VectorSelector":
            out.append(node)
        elif kind == "MatrixSelector":
            out.append(node.vector_selector)
        elif kind in ("ParenExpr", "AggregateExpr", "SubqueryExpr", "UnaryExpr"):
            visit(node.expr)
        elif kind == "BinaryExpr":
            visit(node.lhs)
            visit(node.rhs)
        elif kind == "Call":
            for arg in node.args:
                visit(arg)

    visit(expr)
    return out


def _suggest_from(expr: Any, query: str) -> str:
    selectors = _selectors(expr)
    if not selectors:
        return ""
    forms = []
    for selector in selectors:
        form = f"sum(rate({render_selector(selector)}[5m]))"
        if form not in forms:
            forms.append(form)
    if len(forms) == 1:
        return forms[0]
    return " and ".join(forms[:2]) + " as separate good/total queries"


def _suggest_quantile(expr: Any, query: str) -> str:
    for selector in _selectors(expr):
        name = selector.name or ""
        if name.endswith("_bucket"):
            base = name.removesuffix("_bucket")
            others = [m for m in selector.matchers.matchers if m.name not in ("__name__", "le")]
            extra = "".join(
                f", {m.name}{_OPS[str(m.op).rsplit('.', 1)[-1]]}{json.dumps(m.value, ensure_ascii=False)}"
                for m in others
            )
            return (
                f'good: sum(rate({name}{{le="<threshold>"{extra}}}[5m])), '
                f"total: sum(rate({base}_count{{{extra.removeprefix(', ')}}}[5m]))".replace("{}", "")
            )
    return ""
