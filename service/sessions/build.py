"""A new session from a `SessionCreate`: parameters decoded or built from init specs, buffers,
the program compiled and checked against them, the optimizer validated by the engine, and
(when restoring) gradients and optimizer state checked against the parameters."""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from pydantic import ValidationError

from engine.models.program import INPUT, OUTPUT
from service.problems import PROBLEM_TYPES, ProblemError, json_pointer
from service.problems.validation import validation_problem
from service.programs import models
from service.programs.requests import limits_for
from service.schemas.sessions import InitSpec, SessionCreate
from service.sessions import init, optim
from service.sessions.programs import REQUEST, Source, compile_source
from service.settings import Settings
from service.store import SessionRecord, hash_token, new_session_id, new_token
from service.wire import decode_tensor, decode_tensors, extent


def invalid(pointer: str, detail: str, slug: str = "invalid-session", **ext: Any) -> ProblemError:
    return PROBLEM_TYPES[slug].at(pointer, detail, **ext)


def validation_error(exc: ValidationError, prefix: list[str | int], body: Any) -> ProblemError:
    """A pydantic error inside a pass-through field, as the request validation error it is."""
    errors = [{**e, "loc": ("body", *prefix, *e["loc"])} for e in exc.errors()]
    return validation_problem(errors, body)


def _limit(pointer: str, value: int, maximum: int, limit: str, **ext: Any) -> ProblemError:
    detail = f"{value} elements; the limit is {maximum}"
    if "shape" in ext:
        detail = f"shape {ext['shape']} spans {detail}"
    return PROBLEM_TYPES["limit-exceeded"].at(
        pointer,
        detail,
        summary=f"{detail} (at {pointer})",
        limit=limit,
        value=value,
        maximum=maximum,
        **ext,
    )


def _as_parameter(obj: Any) -> Any:
    """Parameters require grad unless they say otherwise (nn.Parameter's default)."""
    if isinstance(obj, dict):
        if "requires_grad" in obj or obj.get("dtype") in ("int64", "bool"):
            return obj
        return {**obj, "requires_grad": True}
    return {"data": obj, "requires_grad": True}


def decode_parameter(
    obj: Any, pointer: list[str | int], settings: Settings, body: Any
) -> tuple[np.ndarray, bool]:
    """(values, requires_grad) of one parameter given as a tensor or an init spec."""
    where = json_pointer(pointer)
    if isinstance(obj, dict) and "init" in obj:
        try:
            spec = InitSpec.model_validate(obj)
        except ValidationError as exc:
            raise validation_error(exc, pointer, body) from None
        count = extent(spec.shape)  # an empty shape by what it spans, as a tensor's
        if count > settings.max_tensor_elements:
            maximum = settings.max_tensor_elements
            raise _limit(where, count, maximum, "max_tensor_elements", shape=spec.shape)
        try:
            return init.build(spec), spec.requires_grad
        except init.InitError as exc:
            raise invalid(where, f"{spec.init}: {exc}") from None
    array, requires_grad = decode_tensor(
        _as_parameter(obj),
        pointer=where,
        max_elements=settings.max_tensor_elements,
        max_ndim=settings.max_ndim,
    )
    if array.dtype.kind != "f":
        raise invalid(
            where,
            f"a parameter must be floating point (float32 or float64), not {array.dtype}; "
            "keep integer or boolean tensors as buffers",
        )
    return array.copy(), requires_grad


def _decode_group(group: Mapping[str, Any], pointer: str, settings: Settings) -> dict:
    decoded = decode_tensors(
        group,
        pointer=pointer,
        max_elements=settings.max_tensor_elements,
        max_total_elements=settings.max_total_elements,
        max_ndim=settings.max_ndim,
    )
    return {name: array.copy() for name, (array, _) in decoded.items()}


def _check_like(
    what: str, arrays: Mapping[str, np.ndarray], params: Mapping[str, np.ndarray], pointer: str
) -> None:
    for name, array in arrays.items():
        where = f"{pointer}/{name}"
        if name not in params:
            raise invalid(where, f"{what} for {name!r}, which is not a parameter")
        if array.shape != params[name].shape:
            raise invalid(
                where,
                f"{what} of shape {list(array.shape)} for {name!r} of shape "
                f"{list(params[name].shape)}",
                slug="shape-change",
            )


def _check_state(
    state: Mapping[str, Mapping[str, np.ndarray]], params: Mapping[str, np.ndarray], kind: str
) -> None:
    allowed = optim.SLOTS[kind]
    for name, slots in state.items():
        if name not in params:
            raise invalid(f"/optimizer_state/{name}", f"state for {name!r}, not a parameter")
        for slot, array in slots.items():
            where = f"/optimizer_state/{name}/{slot}"
            if slot not in allowed:
                raise invalid(where, f"{kind} keeps no {slot!r}; its state is {sorted(allowed)}")
            expected = () if slot == "step" else params[name].shape
            if array.shape != expected:
                raise invalid(
                    where,
                    f"{slot} of shape {list(array.shape)}; {list(expected)} expected",
                    slug="shape-change",
                )


def check_program(
    program: dict[str, Any], parameters: Mapping[str, Any], buffers: Mapping[str, Any], limits
) -> None:
    """What can be checked before any batch is seen: the program compiles, it reads at least
    one parameter (or runs after a model's), it does not assign a parameter's or buffer's
    name, and the loss is one of its outputs (or the model's)."""
    source = Source.stored(program)
    model_outputs = [OUTPUT] if program.get("model") is not None else []
    if source is None:
        loss = program.get("loss")
        if loss is not None and loss not in model_outputs:
            raise invalid(
                "/loss",
                f"the loss {loss!r} is not an output of the model (its output is {OUTPUT!r}); "
                'add a program computing it, e.g. "expr": "loss = cross_entropy(output, y)"',
                slug="unknown-name",
            )
        return
    compiled = compile_source(replace(source, origin=REQUEST), limits)  # it is in this request
    pointer = "/expr" if source.expr is not None else "/nodes"
    if model_outputs:
        for name in compiled.output_names:
            if name in (INPUT, OUTPUT):
                raise invalid(pointer, f"the program assigns {name!r}, which the model's uses")
    elif not set(compiled.inputs) & parameters.keys():
        reads = ", ".join(compiled.inputs) or "nothing"
        raise invalid(
            pointer,
            f"the program does not use any parameter (it reads {reads}; the parameters are "
            f"{', '.join(sorted(parameters))})",
            slug="parameters-unused",
        )
    for name in compiled.output_names:
        if name in parameters or name in buffers:
            raise invalid(pointer, f"the program assigns {name!r}, a parameter or buffer name")
    loss = program.get("loss")
    if loss is not None and loss not in [*compiled.output_names, *model_outputs]:
        raise invalid(
            "/loss",
            f"the loss {loss!r} is not an output of the program; its outputs are "
            f"{', '.join([*model_outputs, *compiled.output_names])}",
            slug="unknown-name",
        )


def _model_state(
    body: SessionCreate,
    parameters: dict[str, np.ndarray],
    requires_grad: dict[str, bool],
    buffers: dict[str, np.ndarray],
    settings: Settings,
) -> dict[str, Any] | None:
    """The model's spec as stored; its template's tensors added where none of that name is
    given (so a restored session keeps its own, and nothing is built when all are there)."""
    if body.model is None:
        return None
    spec = models.parse_spec(body.model)
    models.check_size(spec, settings)  # before anything of it is built
    names = models.describe(spec, "eval")
    wanted = names["parameters"].keys() - parameters.keys()
    wanted_buffers = names["buffers"].keys() - buffers.keys() - parameters.keys()
    if wanted or wanted_buffers:
        built_params, built_buffers = models.state(spec)
        for name in wanted:
            parameters[name], requires_grad[name] = built_params[name], True
        for name in wanted_buffers:
            buffers[name] = built_buffers[name]
    return models.spec_json(spec)


def record_from(body: SessionCreate, raw: Any, settings: Settings) -> tuple[SessionRecord, str]:
    """A new session's record, and its token, from a JSON request."""
    parameters: dict[str, np.ndarray] = {}
    requires_grad: dict[str, bool] = {}
    total = 0
    for name, obj in body.parameters.items():
        array, flag = decode_parameter(obj, ["parameters", name], settings, raw)
        total += array.size
        if total > settings.max_total_elements:
            raise _limit("/parameters", total, settings.max_total_elements, "max_total_elements")
        parameters[name], requires_grad[name] = array, flag
    buffers = _decode_group(body.buffers, "/buffers", settings)
    grads = _decode_group(body.grads, "/grads", settings)
    state = {
        name: _decode_group(slots, f"/optimizer_state/{name}", settings)
        for name, slots in body.optimizer_state.items()
    }
    return assemble(body, parameters, requires_grad, buffers, grads, state, settings)


def assemble(
    body: SessionCreate,
    parameters: dict[str, np.ndarray],
    requires_grad: dict[str, bool],
    buffers: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    state: dict[str, dict[str, np.ndarray]],
    settings: Settings,
) -> tuple[SessionRecord, str]:
    """Check the parts of a new session against each other; the record and its token."""
    spec = _model_state(body, parameters, requires_grad, buffers, settings)
    if body.expr is None and body.nodes is None and spec is None:
        raise invalid(
            "",
            'a session needs its program: "expr" text, "nodes" with "outputs", or a "model" '
            "template",
        )
    if not parameters:
        raise invalid("/parameters", "a session needs at least one parameter")
    for name in buffers.keys() & parameters.keys():
        raise invalid(f"/buffers/{name}", f"{name!r} is both a parameter and a buffer")
    source = Source.of(body, "session")
    program: dict[str, Any] = {} if source is None else source.to_json()
    if spec is not None:
        program["model"] = spec
    program["loss"] = body.loss
    check_program(program, parameters, buffers, limits_for(settings))
    config = body.optimizer.model_dump()
    optim.validate(config)
    _check_like("a gradient", grads, parameters, "/grads")
    grads = {n: g.astype(parameters[n].dtype, copy=False) for n, g in grads.items()}
    _check_state(state, parameters, config["type"])

    token = new_token()
    record = SessionRecord(
        id=new_session_id(),
        token_hash=hash_token(token),
        program=program,
        optimizer=config,
        requires_grad=requires_grad,
        step_count=body.step_count,
        parameters=parameters,
        buffers=buffers,
        grads=grads,
        optimizer_state=state,
    )
    return record, token
