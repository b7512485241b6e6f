"""BatchNorm1d/2d, as torch.nn's: weight 1, bias 0, running_mean 0, running_var 1 and an
int64 num_batches_tracked buffer, incremented by every training forward; momentum=None
averages the running statistics cumulatively (factor 1/num_batches_tracked)."""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from ...tensor import Tensor
from .. import init
from ._util import buffer, fn, parameter
from .module import Module


class _BatchNorm(Module):
    _dims: tuple = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = parameter((num_features,), dtype)
            if bias:
                self.bias = parameter((num_features,), dtype)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", buffer(0, (num_features,), dtype))
            self.register_buffer("running_var", buffer(1, (num_features,), dtype))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input_dim(self, input) -> None:
        if input.ndim not in self._dims:
            want = " or ".join(f"{d}D" for d in self._dims)
            raise ShapeError(
                f"expected {want} input (got {input.ndim}D input)",
                op=type(self).__name__,
                shapes=[input.shape],
            )

    def forward(self, input):
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            n = self.num_batches_tracked
            if n._a.flags.writeable:
                n._a += 1
            else:
                n._a = n._a + 1
            if self.momentum is None:
                factor = 1.0 / float(n._a)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return fn("batch_norm")(
            input,
            self.running_mean if keep else None,
            self.running_var if keep else None,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
        )

    def _load_from_state_dict(self, state_dict, prefix, strict, report, assign) -> None:
        # torch: a checkpoint without num_batches_tracked (older format) keeps the current one
        key = prefix + "num_batches_tracked"
        if self.track_running_stats and key not in state_dict:
            n = self.num_batches_tracked
            state_dict[key] = n if n is not None else Tensor(np.zeros((), np.int64))
        super()._load_from_state_dict(state_dict, prefix, strict, report, assign)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L) input."""

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W) input."""

    _dims = (4,)
