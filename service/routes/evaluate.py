"""`POST /v1/evaluate`: run a program forward and backward; answer values, gradients and the
DAG as JSON, or the DAG drawn as SVG."""

import shutil
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response
from starlette.concurrency import run_in_threadpool

from engine.deadline import deadline, remaining
from engine.errors import DeadlineExceeded
from engine.program import DrawingTooCostly, GraphvizMissing, layout_size, render_svg
from service.examples import programs as examples
from service.http.deps import settings_of
from service.http.negotiation import negotiate
from service.http.routing import BodyFastRoute
from service.problems import (
    PROBLEM_TYPES,
    PROGRAM_422,
    PROGRAM_501,
    PROGRAM_503,
    problem_responses,
)
from service.programs.evaluate import (
    Evaluation,
    compile_request,
    evaluate,
    execute,
    prepare,
    render,
)
from service.programs.requests import guard, limits_for
from service.schemas.programs import EvaluateCreate, EvaluatePublic
from service.settings import Settings
from service.wire import jsonio

router = APIRouter(prefix="/v1", tags=["evaluate"], route_class=BodyFastRoute)

JSON, SVG = "application/json", "image/svg+xml"
_AS_JSON = "Ask for application/json: its `dag` has the graph, and `dag.dot` the same picture."

_GRAPHVIZ_DETAIL = (
    "Drawing the DAG as SVG needs Graphviz's `dot`, which is not installed on this server "
    "(Debian/Ubuntu package `graphviz`). Ask for application/json: `dag.dot` is the same "
    "picture as DOT text."
)

RESPONSES = {
    200: {
        "description": 'The outputs, gradients and (with `include: ["dag"]`) the graph; or, '
        "for `Accept: image/svg+xml`, the graph drawn by Graphviz.",
        "content": {
            JSON: {"examples": {"seed": examples.EVALUATE_ANSWER}},
            SVG: {"schema": {"type": "string"}},
        },
    },
    **problem_responses(
        400,
        406,
        413,
        415,
        422,
        500,
        501,
        503,
        descriptions={
            422: PROGRAM_422 + " For `backward`: /problems/gradient-required (a non-scalar "
            "output without `gradient`) and /problems/invalid-backward.",
            501: "SVG asked for but Graphviz is not installed (/problems/graphviz-missing); "
            + PROGRAM_501,
            503: PROGRAM_503,
        },
        examples=examples.evaluate_problems(),
    ),
}


def _require_dot() -> None:
    if shutil.which("dot") is None:
        raise PROBLEM_TYPES["graphviz-missing"].error(_GRAPHVIZ_DETAIL, package="graphviz")


# A request this small, whose program has few equations and little arithmetic, runs on the
# event loop: its whole evaluation takes less time than handing it to a worker thread and
# back. Anything bigger (large tensors to decode or encode, long programs, real numpy work,
# Graphviz) runs in the threadpool, off the loop.
INLINE_MAX_BODY_BYTES = 4096
INLINE_MAX_EQNS = 32
INLINE_MAX_COST = 200_000  # estimated floating-point operations, overheads included


def _small_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return length is not None and length.isdigit() and int(length) <= INLINE_MAX_BODY_BYTES


def _answer(result: Evaluation, body: EvaluateCreate) -> Response:
    return Response(jsonio.dumps_safe(render(result, body.binary)), media_type=JSON)


@router.post(
    "/evaluate",
    summary="Evaluate a program: outputs, gradients, DAG",
    response_model=EvaluatePublic,
    responses=RESPONSES,
)
async def evaluate_program(
    body: Annotated[EvaluateCreate, Body(openapi_examples=examples.EVALUATE)],
    request: Request,
) -> Response:
    """Runs the program on the inputs, then each `backward` call in order (gradients
    accumulate, as repeated `.backward(retain_graph=True)` calls do), and answers every
    requested output with its `grad_fn`, the `.grad` of every input with `requires_grad`,
    and with `include: ["dag"]` the backward graph.

    With `Accept: image/svg+xml` the answer is that graph drawn by Graphviz instead (501 when
    Graphviz is not installed). Every check (names, shapes, dtypes, limits) runs before any
    computation."""
    settings = settings_of(request)  # not a dependency: FastAPI's resolution costs more
    media = negotiate(request.headers.get("accept"), [JSON, SVG])
    if media == SVG:
        _require_dot()
    dag = media == SVG or "dag" in body.include
    seconds = settings.max_request_seconds
    if media == JSON and _small_body(request):
        program = compile_request(body, settings)  # cached by text; a short text if not
        if len(program.eqns) <= INLINE_MAX_EQNS:
            prepared = prepare(body, settings, program, dag=dag)
            if prepared.cost <= INLINE_MAX_COST:
                return _answer(execute(prepared), body)
            return await run_in_threadpool(_within, seconds, lambda: execute(prepared), body)
    if media == JSON:
        return await run_in_threadpool(
            _within, seconds, lambda: evaluate(body, settings, dag=dag), body
        )
    return await run_in_threadpool(_svg, body, settings)


def _within(seconds: float, work: Callable[[], Evaluation], body: EvaluateCreate) -> Response:
    """Off the event loop, under the request's time limit (engine.deadline)."""
    with deadline(seconds):
        return _answer(work(), body)


def _svg(body: EvaluateCreate, settings: Settings) -> Response:
    with deadline(settings.max_request_seconds):  # the drawing too: the rest of it is dot's
        return _draw(body, settings)


def _draw(body: EvaluateCreate, settings: Settings) -> Response:
    result = evaluate(body, settings, dag=True)
    assert result.dag is not None
    size = layout_size(result.dag)
    if size > settings.max_svg_nodes:  # before Graphviz: its time and memory grow with this
        raise PROBLEM_TYPES["limit-exceeded"].error(
            f"Drawing this DAG would lay out {size} nodes (its {len(result.dag['nodes'])} "
            "nodes and one per rank each long edge crosses); the limit is "
            f"{settings.max_svg_nodes} (AUTOGRAD_MAX_SVG_NODES). {_AS_JSON}",
            limit="max_svg_nodes",
            value=size,
            maximum=settings.max_svg_nodes,
        )
    left, cap = remaining(), settings.svg_timeout_seconds
    seconds = cap if left is None else min(left, cap)
    with guard(body, limits_for(settings)):
        try:
            svg = render_svg(result.dag["dot"], seconds, settings.svg_memory_bytes,
                             len(result.dag["nodes"]))  # fmt: skip
        except GraphvizMissing:  # uninstalled between the check and the drawing
            _require_dot()
            raise
        except DrawingTooCostly as exc:
            if exc.limit == "seconds" and seconds < cap:
                raise DeadlineExceeded(settings.max_request_seconds) from None
            limit = {"seconds": "svg_timeout_seconds", "bytes": "svg_memory_bytes"}[exc.limit]
            raise PROBLEM_TYPES["limit-exceeded"].error(
                f"Drawing this DAG was stopped: {exc} (AUTOGRAD_{limit.upper()}). {_AS_JSON}",
                limit=limit,
                maximum=getattr(settings, limit),
            ) from None
    return Response(svg, media_type=SVG)
