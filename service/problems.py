"""RFC 9457 problem details: the one shape of every non-2xx answer, and the handlers making it.

Clients branch on `type`, so each kind of problem the service reports has one entry in
`PROBLEM_TYPES` with a fixed status and title; `GET /problems/{slug}` documents it. Plain HTTP
errors (404, 405, 500) use "about:blank" with the status phrase as title, as the RFC asks.
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import request_id
from service.responses import ProblemResponse

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
MAX_ERRORS = 50
_STANDARD_MEMBERS = frozenset(
    {"type", "title", "status", "detail", "instance", "errors", "request_id"}
)


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str
    description: str

    @property
    def uri(self) -> str:
        return f"/problems/{self.slug}"

    def error(
        self,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> "ProblemError":
        return ProblemError(
            self.status,
            self.title,
            detail,
            type=self.uri,
            errors=errors,
            headers=headers,
            **extensions,
        )


def _catalogue(*types: ProblemType) -> dict[str, ProblemType]:
    return {t.slug: t for t in types}


PROBLEM_TYPES: dict[str, ProblemType] = _catalogue(
    ProblemType(
        "invalid-json",
        400,
        "Malformed JSON",
        "The body is not strict JSON (RFC 8259). `line`, `column` and `position` locate the "
        'error. NaN and infinities are not JSON: write them as the strings "NaN", '
        '"Infinity" and "-Infinity" inside tensor data.',
    ),
    ProblemType(
        "invalid-safetensors",
        400,
        "Malformed safetensors body",
        "An `application/octet-stream` body is not a safetensors file: its 8-byte length or "
        "its JSON header is wrong. For a request sent as a file (a session's forward, "
        "backward, train), also: its metadata's `request` is not the JSON text of an "
        "object, or a tensor's name (the JSON pointer of its place in the request, at most "
        "16 levels), dtype (F32, F64, I64, BOOL) or bytes cannot be read.",
    ),
    ProblemType(
        "incomplete-body",
        400,
        "Incomplete request body",
        "The connection closed before the whole request body arrived.",
    ),
    ProblemType(
        "body-too-large",
        413,
        "Request body too large",
        "The body is longer than the server's limit: `maximum` bytes (setting `limit`, "
        "AUTOGRAD_MAX_BODY_BYTES); `value` is the declared or received size. Send large "
        "tensors in the base64 form, which is ~3x smaller than JSON numbers.",
    ),
    ProblemType(
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "Request bodies must be JSON: `Content-Type: application/json`.",
    ),
    ProblemType(
        "validation-error",
        422,
        "Request validation failed",
        "The JSON is well formed but some fields are missing or of the wrong type. "
        "`errors` lists each one with a JSON pointer into the body (the first 50; "
        "`error_count` then gives the total).",
    ),
    ProblemType(
        "invalid-tensor",
        422,
        "Invalid tensor",
        "A tensor on the wire is malformed: ragged nesting, data not matching `shape`, an "
        "unknown dtype, bad base64 or a byte count not equal to elements x item size, or "
        "requires_grad on a non-floating tensor. `errors` points at the field.",
    ),
    ProblemType(
        "limit-exceeded",
        422,
        "Limit exceeded",
        "The request asks for more than a configured limit allows: `limit` names the "
        "setting (AUTOGRAD_<LIMIT>), `maximum` is its value and `value` what was asked. "
        "Checked before the memory is allocated.",
    ),
    ProblemType(
        "program-syntax",
        422,
        "Invalid program syntax",
        "The `expr` text is not a program of `name = expression` assignments, or a `nodes` "
        "entry is not shaped as documented. `line` and `column` (1-based) or `node` locate "
        "it; `errors[].pointer` points at `/expr` or the node in `/nodes`.",
    ),
    ProblemType(
        "forbidden-construct",
        422,
        "Construct not allowed",
        "The program uses Python outside the expression language: imports, lambdas, "
        "comprehensions, dunder or private attributes, starred or `**` arguments, f-strings, "
        "conditionals... Programs are parsed against a whitelist, never evaluated as Python.",
    ),
    ProblemType(
        "unknown-name",
        422,
        "Unknown name",
        "A function, method, attribute or op not in the registry (`GET /v1/ops` lists them), "
        "or a name or node reference that is neither assigned earlier nor given in `inputs`. "
        "`op` or `line`/`column`/`node` say which.",
    ),
    ProblemType(
        "invalid-graph",
        422,
        "Invalid graph",
        "The `nodes` do not form a DAG: two nodes share an id, or nodes depend on themselves "
        "(a cycle). `node` names one of them.",
    ),
    ProblemType(
        "invalid-arguments",
        422,
        "Invalid arguments",
        "A function was called with the wrong number, names or kinds of arguments, or an "
        "argument out of range (a dim, a constant). `op` names the function.",
    ),
    ProblemType(
        "shape-mismatch",
        422,
        "Shape mismatch",
        "Operand shapes do not fit the op (broadcasting, matmul, reshape...). Found by "
        "inferring every shape before any computation: `op`, `shapes` and the location say "
        "which operands.",
    ),
    ProblemType(
        "dtype-mismatch",
        422,
        "Dtype mismatch",
        "An operand's dtype is not accepted by the op (gradients of integer tensors, a float "
        "where an integer index is needed...). `op` and the location say where.",
    ),
    ProblemType(
        "evaluation-error",
        422,
        "Evaluation failed",
        "The engine refused an operation while running a program that passed every check "
        "(a value-dependent error such as an index out of range). `op` and `shapes` name "
        "the operation when known.",
    ),
    ProblemType(
        "invalid-backward",
        422,
        "Invalid backward request",
        "A `backward` entry names an output that is not computed, an output that does not "
        "require grad (no input it depends on has `requires_grad`), or gives a `gradient` "
        "whose shape differs from the output's. `errors[].pointer` names the field.",
    ),
    ProblemType(
        "gradient-required",
        422,
        "Gradient required",
        "Backward from a non-scalar output needs `gradient`: a tensor of the output's shape "
        "(the v of the vector-Jacobian product), as `Q.backward(gradient=...)` does in "
        "PyTorch. `shape` is the output's shape.",
    ),
    ProblemType(
        "not-acceptable",
        406,
        "Not acceptable",
        "The `Accept` header asks for a media type the operation cannot produce; "
        "`available` lists those it can.",
    ),
    ProblemType(
        "unsupported-function",
        501,
        "Function cannot be checked",
        "The registry function has no usable shape or dtype rule for this call, so the "
        "graph cannot be validated before running it. A defect of the service: report it.",
    ),
    ProblemType(
        "graphviz-missing",
        501,
        "Graphviz not installed",
        "SVG pictures of the DAG are drawn by Graphviz's `dot`, which is not installed on "
        "this server (Debian/Ubuntu package `graphviz`). Ask for JSON instead: its `dag.dot` "
        "member is the same picture as DOT text.",
    ),
    ProblemType(
        "insufficient-memory",
        503,
        "Insufficient memory",
        "The server ran out of memory (or of recursion depth) evaluating this request "
        "although it passed the configured limits. Retry later or with smaller tensors.",
    ),
    ProblemType(
        "not-ready",
        503,
        "Service not ready",
        "The service is starting or a dependency (such as the data directory) is unusable; "
        "`checks` says which. Retry later.",
    ),
    # -- sessions ---------------------------------------------------------------------------
    ProblemType(
        "unauthorized",
        401,
        "Bearer token required",
        "Session calls need `Authorization: Bearer <token>`, the token answered when the "
        "session was created. Refused before the session is looked up, so the answer says "
        "nothing about whether it exists.",
    ),
    ProblemType(
        "session-not-found",
        404,
        "Session not found",
        "No session with this id opens with this token: it never existed, was deleted, "
        "expired after AUTOGRAD_SESSION_TTL_SECONDS idle, or the token is another session's. "
        "The answer is the same in every case, so it reveals nothing.",
    ),
    ProblemType(
        "parameter-not-found",
        404,
        "Parameter not found",
        "The session has no parameter of that name; `detail` lists those it has. PUT adds one.",
    ),
    ProblemType(
        "precondition-failed",
        412,
        "Precondition failed",
        "`If-Match` names an ETag the session no longer has: it changed since the client "
        "read it, and nothing was applied. `etag` (also in the ETag header) is the current "
        "one: read the session again and retry.",
    ),
    ProblemType(
        "session-conflict",
        409,
        "Session busy",
        "The session kept changing under a call sent without `If-Match`, which was "
        "recomputed several times and never applied. Retry, or send If-Match.",
    ),
    ProblemType(
        "store-full",
        409,
        "Session store full",
        "A new session, or a bigger one, would exceed a cap of the whole store: `limit` is "
        "max_sessions or max_store_bytes (AUTOGRAD_<LIMIT>), `maximum` its value, `value` "
        "what the request would reach. Delete sessions, or wait for idle ones to expire.",
    ),
    ProblemType(
        "idempotency-key-reused",
        422,
        "Idempotency key reused",
        "The `Idempotency-Key` was already used with a different request to this session "
        "(another method, path or body); a retry must repeat the request exactly. Nothing "
        "was applied.",
    ),
    ProblemType(
        "invalid-optimizer",
        422,
        "Invalid optimizer hyperparameters",
        "torch.optim refuses these hyperparameters (a negative learning rate, Nesterov "
        "without momentum or with dampening, a beta outside [0, 1)...); `detail` has "
        "torch's message and `errors[].pointer` the field.",
    ),
    ProblemType(
        "invalid-session",
        422,
        "Invalid session",
        "The session's parts do not fit together: a missing program or loss, a name used "
        "twice (parameter, buffer, batch input), a non-floating parameter, an init spec "
        "torch cannot build, gradients or optimizer state for unknown parameters, or an "
        "unreadable state file. `errors[].pointer` locates it.",
    ),
    ProblemType(
        "shape-change",
        422,
        "Shape change refused",
        "New values, gradients or optimizer state do not have the shape of the parameter "
        "they are for. To give a parameter another shape, PUT a new one (its gradient and "
        "optimizer state start afresh).",
    ),
    ProblemType(
        "loss-not-scalar",
        422,
        "Loss is not a scalar",
        "backward and train need a loss of one element (`shape` is the loss's shape); "
        "reduce it with mean() or sum() in the program.",
    ),
    ProblemType(
        "parameters-unused",
        422,
        "Program does not use the parameters",
        "The program reads no parameter of the session, or the loss depends on none that "
        "requires grad, so training would change nothing.",
    ),
    ProblemType(
        "unknown-model",
        422,
        "Unknown model template",
        "`model.name` is not a template of `GET /v1/models`; `templates` lists them.",
    ),
    ProblemType(
        "model-not-found",
        404,
        "Model template not found",
        "No template of that name: `GET /v1/models` lists them (`templates` here too).",
    ),
    ProblemType(
        "state-dict-mismatch",
        422,
        "State dict does not fit",
        "The uploaded state_dict does not fit the session's tensors, as torch's "
        "load_state_dict would refuse it: `missing_keys` (with strict), `unexpected_keys` "
        "(with strict) and `mismatched` (key, the file's shape, the session's shape; always "
        "refused). Nothing was loaded.",
    ),
)


class ProblemError(StarletteHTTPException):
    """Raise from anywhere in a request to answer with a problem document.

    A subclass of Starlette's HTTPException so that FastAPI re-raises it untouched even from
    inside body reading (where other exceptions become a generic 400).
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type: str = "about:blank",
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        clash = _STANDARD_MEMBERS & extensions.keys()
        if clash:
            raise ValueError(f"extension members shadow standard ones: {sorted(clash)}")
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.title = title
        self.type = type
        self.errors = errors
        self.extensions = extensions

    def document(self, instance: str | None = None) -> dict[str, Any]:
        return problem_document(
            self.status_code,
            self.title,
            self.detail,
            type=self.type,
            instance=instance,
            errors=self.errors,
            **self.extensions,
        )

    def response(self, instance: str | None = None) -> ProblemResponse:
        return ProblemResponse(
            self.document(instance), status_code=self.status_code, headers=self.headers
        )


def problem_document(
    status: int,
    title: str,
    detail: str,
    *,
    type: str = "about:blank",
    instance: str | None = None,
    errors: list[dict[str, str]] | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": type, "title": title, "status": status, "detail": detail}
    if instance is not None:
        doc["instance"] = instance
    if errors:
        doc["errors"] = errors
    doc.update(extensions)
    rid = request_id.current()  # the id of the request answered: quote it to the operators
    if rid is not None:
        doc["request_id"] = rid
    return doc


def json_pointer(parts: Iterable[str | int]) -> str:
    """RFC 6901 pointer to the value reached by following `parts` from the root."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


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


def _error_items(exc: RequestValidationError) -> list[dict[str, str]]:
    items = []
    for err in exc.errors():
        where, *rest = err["loc"] or ("body",)
        if where == "body":
            path = _body_path(exc.body, tuple(rest), err["type"] == "missing")
            item = {"pointer": json_pointer(path)}
        else:
            item = {"parameter": str(rest[0]) if rest else str(where)}
        items.append({**item, "detail": err["msg"]})
    return items


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
    return problem.response(request.url.path)


async def _on_validation_error(request: Request, exc: RequestValidationError) -> ProblemResponse:
    for err in exc.errors():
        if err["type"] == "json_invalid":
            return _invalid_json(request, err, exc.body)
    items = _error_items(exc)
    first = items[0]
    where = first.get("pointer", first.get("parameter")) or "body"
    detail = f"{where}: {first['detail']}"
    extensions = {}
    if len(items) > 1:
        detail = f"{len(items)} invalid fields; first {detail}"
    if len(items) > MAX_ERRORS:  # a long list of bad elements must not make a huge answer
        extensions["error_count"] = len(items)
        items = items[:MAX_ERRORS]
    problem = PROBLEM_TYPES["validation-error"].error(detail, errors=items, **extensions)
    return problem.response(request.url.path)


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
        return exc.response(request.url.path)
    phrase = HTTPStatus(exc.status_code).phrase
    headers = exc.headers
    if exc.status_code == 405:
        headers = _allow_every_method(request, headers)
    detail = _http_detail(request, exc, phrase, headers)
    problem = ProblemError(exc.status_code, phrase, detail, headers=headers)
    return problem.response(request.url.path)


async def _on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    problem = ProblemError(
        500, "Internal Server Error", "An unexpected error occurred; it has been logged."
    )
    return problem.response(request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)


_STATUS_DESCRIPTIONS = {
    400: "Malformed JSON (problem type /problems/invalid-json).",
    404: "No such resource.",
    413: "Request body over the size limit (/problems/body-too-large).",
    415: "Body is not JSON (/problems/unsupported-media-type).",
    406: "The Accept header names no media type this operation answers (/problems/not-acceptable).",
    422: "Invalid request: a field (/problems/validation-error), a tensor "
    "(/problems/invalid-tensor) or a limit (/problems/limit-exceeded).",
    500: "Unexpected server error.",
    503: "Not ready (/problems/not-ready).",
    401: "No bearer token (/problems/unauthorized).",
    409: "The store is full (/problems/store-full) or the session kept changing "
    "(/problems/session-conflict).",
    412: "If-Match does not match the session's ETag (/problems/precondition-failed).",
}


PROGRAM_422 = (
    "The program or its request is invalid, found before any computation: its text or nodes "
    "(/problems/program-syntax, /problems/forbidden-construct, /problems/unknown-name, "
    "/problems/invalid-graph, /problems/invalid-arguments), its shapes and dtypes "
    "(/problems/shape-mismatch, /problems/dtype-mismatch), a limit "
    "(/problems/limit-exceeded), a tensor (/problems/invalid-tensor), a field "
    "(/problems/validation-error); or the engine refused a value while running "
    "(/problems/evaluation-error)."
)
PROGRAM_501 = (
    "The program calls a function the service cannot check (/problems/unsupported-function)."
)
PROGRAM_503 = "The server ran out of memory (/problems/insufficient-memory), or is not ready."


def problem_responses(
    *statuses: int,
    descriptions: Mapping[int, str] | None = None,
    examples: Mapping[int, Mapping[str, Any]] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status documented as a problem document, with the
    route's own description and named OpenAPI examples when given."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        media: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Problem"}}
        if examples and status in examples:
            media["examples"] = dict(examples[status])
        description = (descriptions or {}).get(status) or _STATUS_DESCRIPTIONS.get(
            status, HTTPStatus(status).phrase
        )
        responses[status] = {"description": description, "content": {PROBLEM_MEDIA_TYPE: media}}
    return responses


PROBLEM_RESPONSES = problem_responses(400, 413, 415, 422, 500)
"""The errors any route taking a JSON body can answer with."""
