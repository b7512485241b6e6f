"""conv2d's argument parsing, shape and dtype rules, with torch's error messages. The
service runs these on shapes alone to refuse a bad graph before any numpy work."""

from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..errors import ArgumentError, DTypeError, ShapeError


def _dims(s) -> str:
    return "[" + ", ".join(str(n) for n in s) + "]"


def conv_ints(v, name, n=2) -> tuple:
    """An int or a list of 1 or n ints, as torch's expand_param_if_needed takes them."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v),) * n
    try:
        t = tuple(int(x) for x in v)
    except TypeError:
        raise ArgumentError(f"conv2d(): {name} must be an int or a tuple of ints") from None
    if len(t) == 1:
        return t * n
    if len(t) != n:
        raise ArgumentError(
            f"expected {name} to be a single integer value or a list of {n} values to match "
            f"the convolution dimensions, but got {name}={list(t)}"
        )
    return t


def parse_conv(in_shape, w_shape, b_shape, stride, padding, dilation, groups):
    """The `convolution` attributes for a conv2d call, F.pad's list for the extra
    bottom/right padding 'same' needs with an even kernel (None if none), and the output
    shape. Raises torch's errors for any shape or attribute that does not fit."""
    if len(in_shape) not in (3, 4):
        raise ShapeError(
            "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: "
            + _dims(in_shape),
            op="conv2d",
            shapes=[in_shape],
        )
    if len(w_shape) < 3:
        raise ShapeError(
            "weight should have at least three dimensions", op="conv2d", shapes=[w_shape]
        )
    if len(w_shape) != 4:
        raise ShapeError(
            f"expected stride to be a single integer value or a list of {len(w_shape) - 2} "
            f"values to match the convolution dimensions, but got stride="
            f"{list(conv_ints(stride, 'stride'))} (conv2d's weight is (out_channels, "
            f"in_channels/groups, kH, kW), got weight of size {_dims(w_shape)})",
            op="conv2d",
            shapes=[in_shape, w_shape],
        )
    stride = conv_ints(stride, "stride")
    dilation = conv_ints(dilation, "dilation")
    pad_nd = None
    if isinstance(padding, str):
        if padding == "valid":
            pad = (0, 0)
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ArgumentError("padding='same' is not supported for strided convolutions")
            total = [dl * (k - 1) for dl, k in zip(dilation, w_shape[2:], strict=True)]
            pad = tuple(t // 2 for t in total)
            extra = [t - 2 * (t // 2) for t in total]  # torch pads the odd one at the end
            if any(extra):
                pad_nd = (0, extra[1], 0, extra[0])
        else:
            raise ArgumentError(f"Invalid padding string: '{padding}'")
    else:
        pad = conv_ints(padding, "padding")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool):
        raise ArgumentError(f"conv2d(): groups must be an int, got {type(groups).__name__}")
    attrs = {"stride": stride, "padding": pad, "dilation": dilation, "groups": int(groups)}
    x4 = (1, *in_shape) if len(in_shape) == 3 else tuple(in_shape)
    if pad_nd:
        x4 = (*x4[:2], x4[2] + pad_nd[3], x4[3] + pad_nd[1])
    out = conv_shape(x4, w_shape, b_shape if b_shape is not None else (), **attrs)
    return attrs, pad_nd, (out[1:] if len(in_shape) == 3 else out)


def conv_shape(input, weight, bias=(), *, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """The output shape of ATen's convolution on a 4-D input (the checks of
    check_shape_forward, worded as torch)."""
    shapes = [tuple(input), tuple(weight)]
    if any(s <= 0 for s in stride):
        raise ArgumentError("non-positive stride is not supported")
    if any(p < 0 for p in padding):
        raise ArgumentError("negative padding is not supported")
    if any(dl <= 0 for dl in dilation):
        raise ArgumentError(f"dilation should be greater than zero, but got {list(dilation)}")
    if groups <= 0:
        raise ArgumentError("non-positive groups is not supported")
    n, c, h, w = input
    o, cg, kh, kw = weight
    if o % groups:
        raise ShapeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension "
            f"0, but got weight of size [{_dims(weight)}] instead",
            op="conv2d",
            shapes=shapes,
        )
    if cg * groups != c:
        raise ShapeError(
            f"Given groups={groups}, weight of size {_dims(weight)}, expected input"
            f"{_dims(input)} to have {cg * groups} channels, but got {c} channels instead",
            op="conv2d",
            shapes=shapes,
        )
    if len(bias) and (len(bias) != 1 or bias[0] != o):
        raise ShapeError(
            f"Given weight of size {_dims(weight)}, expected bias to be 1-dimensional with {o} "
            f"elements, but got bias of size {_dims(bias)} instead",
            op="conv2d",
            shapes=[*shapes, tuple(bias)],
        )
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if hp < eh or wp < ew:
        raise ShapeError(
            f"Calculated padded input size per channel: ({hp} x {wp}). Kernel size: ({eh} x "
            f"{ew}). Kernel size can't be greater than actual input size",
            op="conv2d",
            shapes=shapes,
        )
    return (n, o, (hp - eh) // stride[0] + 1, (wp - ew) // stride[1] + 1)


def conv2d_shape(input, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    """conv2d's output shape for these operand shapes and arguments."""
    bshape = None if bias is None else tuple(bias)
    return parse_conv(tuple(input), tuple(weight), bshape, stride, padding, dilation, groups)[2]


_TYPE = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int"}


def _tname(dt):
    return _TYPE.get(str(dt), str(dt))


def conv2d_dtype(input, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    """The input's dtype; the weight (and bias) must have the same one, as torch requires."""
    dt = _dt.canonical(input)
    if _dt.canonical(weight) != dt:
        raise DTypeError(
            f"Input type (torch.{_tname(dt)}Tensor) and weight type (torch."
            f"{_tname(_dt.canonical(weight))}Tensor) should be the same"
        )
    if bias is not None and _dt.canonical(bias) != dt:
        raise DTypeError(
            f"Input type ({_tname(dt).lower()}) and bias type "
            f"({_tname(_dt.canonical(bias)).lower()}) should be the same"
        )
    if dt.kind not in "fiu":
        raise DTypeError(f"\"slow_conv2d_cpu\" not implemented for '{_tname(dt)}'")
    return dt
