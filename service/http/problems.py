"""The FastAPI side of problems (`service.problems` holds the catalogue and the exception):
the handlers that answer every refusal, validation error and plain HTTP error (404, 405, 500)
with an RFC 9457 document. Plain HTTP errors use "about:blank" with the status phrase as
title, as the RFC asks."""

import logging
import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import DeadlineExceeded
from service.http import request_id
from service.http.responses import ProblemResponse
from service.problems.catalogue import PROBLEM_TYPES
from service.problems.errors import ProblemError
from service.problems.validation import validation_problem

# The name operators filter on for unexpected errors; it predates this module's.
log = logging.getLogger("service.problems")


class HTTPProblem(ProblemError, StarletteHTTPException):
    """A problem raised while FastAPI reads a body (a size limit, a null member): FastAPI turns
    any other exception raised there into a generic 400, but re-raises HTTPExceptions."""

    @classmethod
    def of(cls, problem: ProblemError) -> "HTTPProblem":
        http = cls.__new__(cls)
        http.__dict__.update(vars(problem))
        return http


def problem_response(problem: ProblemError, instance: str | None = None) -> ProblemResponse:
    doc = problem.document(instance)
    rid = request_id.current()  # the id of the request answered: quote it to the operators
    if rid is not None:
        doc["request_id"] = rid
    return ProblemResponse(doc, status_code=problem.status_code, headers=problem.headers)


def _invalid_json(request: Request, err: dict[str, Any], doc: Any) -> ProblemResponse:
    pos = err["loc"][1] if len(err["loc"]) > 1 else 0
    text = doc.decode("utf-8", "replace") if isinstance(doc, bytes) else str(doc or "")
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    reason = err.get("ctx", {}).get("error", "invalid JSON")
    detail = f"Malformed JSON at line {line}, column {column}: {reason}"
    if text.startswith(("NaN", "Infinity", "-Infinity"), pos):
        detail += '; write non-finite numbers as the strings "NaN", "Infinity", "-Infinity"'
    problem = PROBLEM_TYPES["invalid-json"].error(detail, line=line, column=column, position=pos)
    return problem_response(problem, request.url.path)


async def _on_validation_error(request: Request, exc: RequestValidationError) -> ProblemResponse:
    for err in exc.errors():
        if err["type"] == "json_invalid":
            return _invalid_json(request, err, exc.body)
    problem = validation_problem(exc.errors(), exc.body)
    return problem_response(problem, request.url.path)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allow_every_method(request: Request, headers: Mapping[str, str] | None) -> Any:
    """A 405's `Allow`: every method documented for the path's route template. Starlette
    names only those of the first route that matched the path (GET for a resource that
    also has DELETE)."""
    template = getattr(request.scope.get("route"), "path_format", None)
    documented = request.app.openapi().get("paths", {}).get(template, {})
    methods = sorted(m.upper() for m in documented if m.upper() in _METHODS)
    return {**(headers or {}), "Allow": ", ".join(methods)} if methods else headers


def _http_detail(
    request: Request, exc: StarletteHTTPException, phrase: str, headers: Mapping[str, str] | None
) -> str:
    if exc.detail and exc.detail != phrase:
        return str(exc.detail)
    if exc.status_code == 404:
        return f"No resource at {request.url.path}"
    if exc.status_code == 405:
        allowed = (headers or {}).get("Allow", "")
        return f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    return phrase


async def _on_http_exception(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
    if isinstance(exc, ProblemError):
        return problem_response(exc, request.url.path)
    phrase = HTTPStatus(exc.status_code).phrase
    headers = exc.headers
    if exc.status_code == 405:
        headers = _allow_every_method(request, headers)
    detail = _http_detail(request, exc, phrase, headers)
    problem = ProblemError(exc.status_code, phrase, detail, headers=headers)
    return problem_response(problem, request.url.path)


async def _on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    problem = ProblemError(
        500, "Internal Server Error", "An unexpected error occurred; it has been logged."
    )
    return problem_response(problem, request.url.path)


async def _on_exhausted(request: Request, exc: Exception) -> ProblemResponse:
    """Memory (or the stack) ran out outside the engine guards (`programs.requests.guard` has
    its own answer): decoding, encoding an answer, a session's bookkeeping. The request passed
    the limits, so the server is short, not the request wrong: 503, retry later."""
    what = "out of memory" if isinstance(exc, MemoryError) else "too deeply recursive"
    log.warning("%s %s exhausted %s", request.method, request.url.path, type(exc).__name__)
    problem = PROBLEM_TYPES["insufficient-memory"].error(
        f"The server could not hold this request ({what}); retry later, or with smaller "
        "tensors or a smaller program.",
        headers={"Retry-After": "5"},
    )
    return problem_response(problem, request.url.path)


async def _on_deadline(request: Request, exc: Exception) -> ProblemResponse:
    """The engine stopped a computation at its time limit (engine.deadline, set where a
    request hands work to the engine). Retrying helps once the server is less busy; the
    same work on an idle server may need less data per call."""
    assert isinstance(exc, DeadlineExceeded)
    log.warning("%s %s stopped at its %g s time limit", request.method, request.url.path,
                exc.seconds)  # fmt: skip
    problem = PROBLEM_TYPES["deadline-exceeded"].error(
        f"The computation ran past the time limit of {exc.seconds:g} s and was stopped; "
        "nothing was changed. Retry later, or send less work per request.",
        headers={"Retry-After": str(max(1, math.ceil(exc.seconds)))},
        limit="max_request_seconds",
        maximum=exc.seconds,
    )
    return problem_response(problem, request.url.path)


async def _on_problem(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(exc, request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(DeadlineExceeded, _on_deadline)
    app.add_exception_handler(MemoryError, _on_exhausted)
    app.add_exception_handler(RecursionError, _on_exhausted)
    app.add_exception_handler(Exception, _on_unexpected)
