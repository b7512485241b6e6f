"""Conv2d, as torch.nn.Conv2d: weight (out, in/groups, kh, kw), torch's initialisation
(kaiming_uniform_(a=√5), bias U(±1/√fan_in)), torch's argument checks and repr. Only
padding_mode='zeros' is computed (the other modes need a padding op the engine lacks)."""

from __future__ import annotations

from ...errors import ArgumentError
from ._util import fn, pair, parameter, reset_weight_and_bias
from .module import Module

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")  # torch's order


class Conv2d(Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        kernel_size, stride, dilation = pair(kernel_size), pair(stride), pair(dilation)
        if groups <= 0:
            raise ArgumentError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ArgumentError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ArgumentError("out_channels must be divisible by groups")
        if isinstance(padding, str):
            valid = {"same", "valid"}  # torch's set, printed in the same order
            if padding not in valid:
                raise ArgumentError(f"Invalid padding string {padding!r}, should be one of {valid}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ArgumentError("padding='same' is not supported for strided convolutions")
        else:
            padding = pair(padding)
        if padding_mode not in _PADDING_MODES:
            raise ArgumentError(
                f"padding_mode must be one of {set(_PADDING_MODES)}, but got "
                f"padding_mode='{padding_mode}'"
            )
        if padding_mode != "zeros":
            raise ArgumentError(
                f"Conv2d: padding_mode='{padding_mode}' is not supported by the engine; "
                "use padding_mode='zeros'"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = False
        self.output_padding = (0, 0)
        self.groups = groups
        self.padding_mode = padding_mode
        self.weight = parameter((out_channels, in_channels // groups, *kernel_size), dtype)
        if bias:
            self.bias = parameter((out_channels,), dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input):
        return fn("conv2d")(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if self.padding != (0,) * len(self.padding):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
