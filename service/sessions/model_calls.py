"""Session calls for models as torch uses them: a forward in training mode (which, as
`model.train()` under `torch.no_grad()`, updates and keeps the batch norms' running
statistics), `model.state_dict()` as a safetensors file torch loads unchanged, and
`model.load_state_dict(file, strict)` from one (a torchvision checkpoint, or a state_dict a
client saved with `safetensors.torch.save_file`)."""

from typing import Any

import numpy as np

from service.problems import PROBLEM_TYPES
from service.programs import models
from service.programs.lanes import LANE
from service.programs.requests import limits_for
from service.schemas.session_calls import SessionForwardCreate
from service.sessions.actions import _encode
from service.sessions.model import Model, check_outputs, checked_cost, evaluate, selected
from service.sessions.outcome import Outcome
from service.sessions.programs import programs_for, pruned
from service.sessions.state import check_sizes
from service.settings import Settings
from service.store import Changes, SessionRecord
from service.wire import safetensors


def forward(record: SessionRecord, body: SessionForwardCreate, settings: Settings) -> Outcome:
    """POST .../forward with `"mode": "train"`: the outputs, and the running statistics the
    model's batch norms updated committed (nothing to commit for other programs)."""
    limits = limits_for(settings)
    model = Model.of(record)
    programs = programs_for(record, body, limits)
    if body.outputs is not None:
        check_outputs(body.outputs, programs.output_names)
        programs = pruned(programs, body.outputs)
    batch = model.decode_batch(body.inputs, settings)
    specs, flops = checked_cost(model, programs, batch, limits, grad=False)
    with LANE.admitted(flops):
        evaluated = evaluate(model, programs, batch, limits, grad=False, specs=specs)
    content = {"outputs": _encode(selected(evaluated, body.outputs), body.binary)}
    changes = Changes(buffers=model.buffer_changes()) if model.touched else None
    return Outcome(content, changes)


def state_dict(record: SessionRecord) -> bytes:
    """Parameters and buffers under their own names: for a model session, its state_dict
    with torch's keys (`torch.nn.Module.load_state_dict(safetensors.torch.load(...))`)."""
    arrays = {**record.parameters, **record.buffers}
    return safetensors.write({k: np.require(v, requirements="C") for k, v in arrays.items()},
                             {"format": "pt"})  # fmt: skip


def _order(record: SessionRecord) -> list[str]:
    """The session's tensor names, a model's in its state_dict order (torch's key order in
    messages), then any others."""
    names = [*record.parameters, *record.buffers]
    spec = record.program.get("model")
    if spec is None:
        return names
    described = models.describe(models.parse_spec(spec), "eval")
    template = [*described["parameters"], *described["buffers"]]
    position = {name: i for i, name in enumerate(template)}
    return sorted(names, key=lambda n: (position.get(n, len(template)), n))


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))


def _mismatch_message(what: str, missing, unexpected, mismatched) -> str:
    """torch's load_state_dict message (its order: missing, unexpected, size mismatches)."""
    lines = []
    if missing:
        lines.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
    if unexpected:
        keys = ", ".join(f'"{k}"' for k in unexpected)
        lines.append(f"Unexpected key(s) in state_dict: {keys}. ")
    for key, theirs, ours in mismatched:
        lines.append(
            f"size mismatch for {key}: copying a param with shape {_shape(theirs)} from "
            f"checkpoint, the shape in current model is {_shape(ours)}."
        )
    return f"Error(s) in loading state_dict for {what}:\n\t" + "\n\t".join(lines)


def load_state_dict(
    record: SessionRecord, data: bytes, strict: bool, settings: Settings
) -> Outcome:
    """Copy the file's tensors into the session's parameters and buffers of the same names,
    cast to their dtypes; gradients and optimizer state are kept, as torch keeps them. Refused
    as a whole (nothing copied) with the keys torch would name."""
    _, tensors = safetensors.read(
        data, lambda header: check_sizes(header, settings), refused_as="invalid-session"
    )
    own = {**record.parameters, **record.buffers}
    order = _order(record)
    missing = [k for k in order if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    mismatched = [
        (k, tuple(tensors[k].shape), tuple(own[k].shape))
        for k in order
        if k in tensors and tensors[k].shape != own[k].shape
    ]
    if mismatched or (strict and (missing or unexpected)):
        model = record.program.get("model") or {}
        what = model.get("name", "the session")
        detail = _mismatch_message(
            what, missing if strict else [], unexpected if strict else [], mismatched
        )
        raise PROBLEM_TYPES["state-dict-mismatch"].error(
            detail,
            missing_keys=missing if strict else [],
            unexpected_keys=unexpected if strict else [],
            mismatched=[{"key": k, "file": list(t), "session": list(o)} for k, t, o in mismatched],
        )
    params: dict[str, np.ndarray | None] = {}
    buffers: dict[str, np.ndarray | None] = {}
    for key, array in tensors.items():
        if key not in own:
            continue
        group = params if key in record.parameters else buffers
        group[key] = np.array(array, dtype=own[key].dtype)  # copy_: cast to the session's
    content: dict[str, Any] = {
        "loaded": [k for k in order if k in tensors],
        "missing_keys": missing,
        "unexpected_keys": unexpected,
    }
    return Outcome(content, Changes(parameters=params, buffers=buffers))
