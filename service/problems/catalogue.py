"""Every kind of problem the service reports, one entry each: clients branch on `type`, so a
kind has one fixed status and title, and `GET /problems/{slug}` documents it. The table is
data (it may run long); `ProblemType.error` and `.at` build the exception a request raises."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.problems.errors import ProblemError


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
    ) -> ProblemError:
        return ProblemError(
            self.status,
            self.title,
            detail,
            type=self.uri,
            errors=errors,
            headers=headers,
            **extensions,
        )

    def at(
        self, pointer: str | None, detail: str, *, summary: str | None = None, **extensions: Any
    ) -> ProblemError:
        """This problem about one place in the request: `errors` is `[{pointer, detail}]`
        (none when `pointer` is None); the document's own `detail` is `summary`, or `detail`."""
        errors = None if pointer is None else [{"pointer": pointer, "detail": detail}]
        return self.error(detail if summary is None else summary, errors=errors, **extensions)


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
        "deadline-exceeded",
        503,
        "Computation took too long",
        "The computation ran past the server's time limit, `maximum` seconds (`limit` "
        "max_request_seconds, AUTOGRAD_MAX_REQUEST_SECONDS), and was stopped between two "
        "steps. Nothing was changed: a session is as it was before the call. Retry after "
        "`Retry-After` seconds when the server is less busy, or send less work (smaller "
        "tensors, fewer batches per train call).",
    ),
    ProblemType(
        "server-busy",
        503,
        "Server busy",
        "The request's computation is expensive (its estimated floating-point operations, "
        "`flops`, are over AUTOGRAD_HEAVY_FLOPS) and every slot this worker keeps for such "
        "computations (AUTOGRAD_HEAVY_SLOTS) stayed taken until its time limit. Nothing ran; "
        "retry after `Retry-After` seconds.",
    ),
    ProblemType(
        "not-ready",
        503,
        "Service not ready",
        "The service is starting or a dependency (such as the data directory) is unusable; "
        "`checks` says which. Retry later.",
    ),
    ProblemType(
        "storage-full",
        507,
        "Session storage full",
        "The session store has no room left for this write: its disk is full, or Redis is "
        "at its `maxmemory`. Nothing was applied, and what the session held before is "
        "intact. It lasts until an operator frees space (or idle sessions expire), so it is "
        "not a blip to retry at once; `/readyz` reports it meanwhile. `reason` is the "
        "store's own message.",
    ),
    ProblemType(
        "storage-failed",
        503,
        "Session storage failed",
        "The session store's file could not be read or written: an I/O error, or the "
        "database is damaged. Nothing was applied. An operator must repair or restore the "
        "storage (`/readyz` reports it meanwhile); retrying soon will not help. `reason` is "
        "the store's own message.",
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
        507,
        "Session store full",
        "A new session, or a bigger one, would exceed a cap of the whole store: `limit` is "
        "max_sessions or max_store_bytes (AUTOGRAD_<LIMIT>), `maximum` its value, `value` "
        "what the request would reach. Nothing was stored. `Retry-After` is when the "
        "earliest session expires; deleting sessions you no longer need makes room at once.",
    ),
    ProblemType(
        "quota-exceeded",
        429,
        "Client quota exceeded",
        "A new session, or a bigger one, would exceed this client's own share of the store "
        "(its API key's caps, or its address's when keys are off): `limit` is "
        "max_client_sessions or max_client_bytes, `maximum` its value, `value` what the "
        "request would reach. Other clients are not affected. Nothing was stored. "
        "`Retry-After` is when the client's earliest session expires; deleting one of its "
        "sessions makes room at once.",
    ),
    ProblemType(
        "rate-limited",
        429,
        "Too many requests",
        "This client (API key, or address when keys are off) sent requests faster than its "
        "rate allows. `Retry-After` says when the next one is accepted; the `RateLimit-Policy` "
        "and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers-09) give the quota "
        "(`q` requests per `w` seconds) and what is left (`r`, full again in `t` seconds), "
        "on every answer while a limit applies.",
    ),
    ProblemType(
        "api-key-required",
        401,
        "API key required",
        "This server requires an API key on every /v1 call: `X-API-Key: <key>`, or "
        "`Authorization: Bearer <key>` on calls that take no session token (a session's own "
        "calls keep `Authorization: Bearer <session token>` and send the key in X-API-Key). "
        "Refused before anything else is read.",
    ),
    ProblemType(
        "api-key-invalid",
        401,
        "API key not recognised",
        "The API key sent is not one this server knows (mistyped, or revoked). Ask the "
        "operator for a key (`autograd-service keys add`).",
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
