"""The application factory: `uvicorn service.app:create_app --factory`."""

import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from engine.program import set_cache_size as set_program_cache_size
from service import __version__
from service.clients.keyring import KeyRing
from service.http.body_limit import BodyLimitMiddleware
from service.http.clients import ClientsMiddleware, caps_of
from service.http.observability import ServiceApp
from service.http.openapi import install_openapi, operation_id
from service.http.problems import install_problem_handlers
from service.http.responses import ORJSONResponse
from service.metrics import TimedStore
from service.programs.lanes import LANE
from service.routes import (
    derivatives,
    docs,
    evaluate,
    health,
    models,
    ops,
    parameters,
    problems,
    sessions,
    state_dict,
    training,
)
from service.sessions.live import LiveStore
from service.settings import Settings
from service.store.factory import make_store

DESCRIPTION = """\
Evaluate PyTorch-style autograd graphs: send an expression and its input tensors, get back
the outputs, the gradients and the graph autograd built.

**Tensors** are written the same way everywhere, in requests and answers:
a bare number or nested list (`[[1, 2], [3, 4]]`); an object
`{"data", "shape", "dtype", "requires_grad"}`; or, for large tensors, raw little-endian bytes
`{"b64", "shape", "dtype"}`; a session's `forward`, `backward` and `train` also take the
request as a safetensors file (`application/octet-stream`; see those calls). Without
`dtype`, types follow `torch.tensor`: booleans give `bool`, integers `int64`, anything with a
float `float32`.

**Non-finite numbers** are not JSON. They are written as the strings `"NaN"`, `"Infinity"`
and `"-Infinity"`, in tensor data and everywhere else; bare `NaN` tokens are malformed JSON.
In the base64 form they are ordinary IEEE 754 bit patterns.

**Errors** are RFC 9457 problem documents (`application/problem+json`) whose `type` is
described at `GET /problems/{slug}`; `errors[].pointer` locates invalid fields in the body.
"""

TAGS = [
    {
        "name": "evaluate",
        "description": "Run a program forward and backward; get values, gradients and the DAG.",
    },
    {
        "name": "derivatives",
        "description": "Full Jacobians and Hessians, and gradients checked against finite "
        "differences.",
    },
    {
        "name": "sessions",
        "description": "Training on the server: a model's parameters, gradients and optimizer "
        "state kept between calls, so each step sends only a batch.",
    },
    {
        "name": "models",
        "description": "Model templates (ResNet-18, MLPs) a session builds on the server, and "
        "their programs as nodes.",
    },
    {"name": "ops", "description": "The functions programs can call."},
    {"name": "health", "description": "Probes for supervisors and load balancers."},
    {"name": "problems", "description": "The error types answers can carry."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else Settings()
    # Read now: a keys file that is missing or malformed stops the start (KeyFileError),
    # rather than serving open.
    keys = KeyRing(settings.api_keys_file) if settings.api_keys_file is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        set_program_cache_size(settings.program_cache_size)
        LANE.configure(settings.heavy_flops, settings.heavy_slots, settings.data_dir)
        app.state.settings = settings
        # Each worker process opens its own store and keeps its own sessions in memory.
        store = make_store(settings, client_caps=caps_of(keys, settings))
        app.state.store = LiveStore(TimedStore(store), settings)
        # What exists once the worker is up (modules, the op registry, the app) leaves the
        # cyclic collector's reach. A full collection otherwise walks all of it, ~100 ms
        # holding the GIL, and a request allocating a big program triggers several: the event
        # loop thread waited that long to answer /livez. After it: ~10 ms.
        gc.freeze()  # (no collection first: the little start-up garbage is not worth 100 ms)
        # A thread of Python work (a journal replay, a long program's check) hands the GIL to
        # the event loop only every switch interval, and a request takes several handoffs:
        # at the default 5 ms /livez waited ~50 ms behind one. 1 ms costs little throughput.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        try:
            yield
        finally:
            gc.unfreeze()  # (an app started again in this process, as tests do, re-freezes)
            sys.setswitchinterval(switch)
            app.state.store.close()

    app = ServiceApp(  # FastAPI, with request ids, access log and metrics around everything
        title="Autograd Service",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # FastAPI's pages load Swagger UI from a CDN; routes/docs.py serves local copies.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # Pydantic's JSON writer turns NaN into null; this one writes "NaN".
        default_response_class=ORJSONResponse,
        generate_unique_id_function=operation_id,
        # One schema per model: tensors read and written are documented as the same thing.
        separate_input_output_schemas=False,
    )
    install_problem_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        # a state file to restore or load is at most a session's size (plus its header)
        max_upload_bytes=settings.max_session_bytes + (1 << 20),
    )
    # Outside the body limit: who is calling is settled before any body is read.
    app.add_middleware(ClientsMiddleware, settings=settings, keys=keys)
    for module in (  # in this order: the OpenAPI document lists the paths so
        evaluate,
        derivatives,
        sessions,
        training,
        state_dict,
        parameters,
        models,
        ops,
        health,
        problems,
        docs,
    ):
        app.include_router(module.router)
    install_openapi(app)
    return app
