"""The validation-error problem from pydantic's errors: each error a JSON pointer into the body.
FastAPI's request validation and the domain's own validation of pass-through fields (an init
spec inside a session's parameters) answer the same document through it."""

from collections.abc import Sequence
from typing import Any

from service.problems.catalogue import PROBLEM_TYPES
from service.problems.errors import ProblemError, json_pointer

MAX_ERRORS = 50


def _body_path(body: Any, loc: tuple[Any, ...], missing: bool) -> list[str | int]:
    """The part of a pydantic `loc` that exists in the body.

    Pydantic inserts the names of union members into `loc` (`x`, `int`, ...); they are not in
    the document, so segments that cannot be followed are dropped, except the key a "missing"
    error names, which is absent by definition.
    """
    path: list[str | int] = []
    node = body
    for i, seg in enumerate(loc):
        in_object = isinstance(node, dict) and seg in node
        in_array = isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node)
        if in_object or in_array:
            node = node[seg]
        elif not (missing and isinstance(node, dict) and i == len(loc) - 1):
            continue
        path.append(seg)
    return path


def _error_items(errors: Sequence[Any], body: Any) -> list[dict[str, str]]:
    items = []
    for err in errors:
        where, *rest = err["loc"] or ("body",)
        if where == "body":
            path = _body_path(body, tuple(rest), err["type"] == "missing")
            item = {"pointer": json_pointer(path)}
        else:
            item = {"parameter": str(rest[0]) if rest else str(where)}
        items.append({**item, "detail": err["msg"]})
    return items


def validation_problem(errors: Sequence[Any], body: Any) -> ProblemError:
    """`errors` as pydantic lists them, `loc` starting with "body" (or a parameter's place)."""
    items = _error_items(errors, body)
    first = items[0]
    where = first.get("pointer", first.get("parameter")) or "body"
    detail = f"{where}: {first['detail']}"
    extensions = {}
    if len(items) > 1:
        detail = f"{len(items)} invalid fields; first {detail}"
    if len(items) > MAX_ERRORS:  # a long list of bad elements must not make a huge answer
        extensions["error_count"] = len(items)
        items = items[:MAX_ERRORS]
    return PROBLEM_TYPES["validation-error"].error(detail, errors=items, **extensions)
