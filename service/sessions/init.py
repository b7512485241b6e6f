"""Parameters built on the server from an init spec, by `engine.nn.init` (torch.nn.init's
functions, fans and gains) with a generator seeded by the spec.

The random draws are numpy's (PCG64 seeded by `seed`), not torch's generator: the same spec
gives the same values every time, and the distribution is torch's, but the numbers differ
from `torch.manual_seed(seed); nn.init.xxx_(t)`.
"""

import warnings

import numpy as np

from engine import Tensor
from engine.errors import EngineError
from engine.nn import init as nn_init
from service.schemas.sessions import InitSpec


class InitError(ValueError):
    """The spec cannot be built (torch raises for the same cases)."""


def build(spec: InitSpec) -> np.ndarray:
    """The parameter's values; InitError for a spec torch would refuse."""
    t = Tensor(np.zeros(tuple(spec.shape), np.dtype(spec.dtype)))
    rng = np.random.default_rng(spec.seed)
    try:
        with warnings.catch_warnings():  # "Initializing zero-element tensors is a no-op"
            warnings.simplefilter("ignore", UserWarning)
            _fill(spec, t, rng)
    except EngineError as exc:
        raise InitError(str(exc)) from None
    return t.numpy()


def _fill(spec: InitSpec, t: Tensor, rng: np.random.Generator) -> None:
    if spec.init == "zeros":
        nn_init.zeros_(t)
    elif spec.init == "ones":
        nn_init.ones_(t)
    elif spec.init == "normal":
        nn_init.normal_(t, spec.mean, spec.std, generator=rng)
    elif spec.init == "uniform":
        if spec.a > spec.b:  # numpy would draw from [b, a); torch refuses
            raise InitError(
                f"uniform_ expects to return a [from, to) range, but found from={spec.a} > "
                f"to={spec.b}"
            )
        nn_init.uniform_(t, spec.a, spec.b, generator=rng)
    elif spec.init in ("kaiming_uniform", "kaiming_normal"):
        fill = (
            nn_init.kaiming_uniform_ if spec.init == "kaiming_uniform" else nn_init.kaiming_normal_
        )
        fill(t, a=spec.a, mode=spec.mode, nonlinearity=spec.nonlinearity, generator=rng)
    elif spec.init == "xavier_uniform":
        nn_init.xavier_uniform_(t, spec.gain, generator=rng)
    else:
        nn_init.xavier_normal_(t, spec.gain, generator=rng)
