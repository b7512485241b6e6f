"""The limits a program is checked against, each a parameter (the service fills them from its
settings: the field names are the same)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_expr_chars: int = 65_536  # program text length, checked before anything else
    max_depth: int = 100  # bracket nesting in the text, pre-scanned before ast.parse
    max_syntax_nodes: int = 200_000  # AST nodes (or JSON nodes) walked while compiling
    max_nodes: int = 10_000  # equations (ops) after compiling
    max_ndim: int = 32  # dimensions of any one tensor
    max_tensor_elements: int = 10_000_000  # elements of any one tensor (views included)
    max_total_elements: int = 50_000_000  # summed over inputs, results (and gradients)
    max_flops: int = 10_000_000_000  # estimated floating-point operations (see check.py)
    max_request_bytes: int = 1 << 30  # estimated peak bytes, temporaries included (check.py)
    max_int_bits: int = 63  # integer constants, folded constants included

    def __post_init__(self):
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"Limits.{name} must be a non-negative int, got {value!r}")


DEFAULT = Limits()
