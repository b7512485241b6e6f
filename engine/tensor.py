"""The Tensor front end: a numpy array, its autograd bookkeeping and torch's attribute names.

Arithmetic and op methods, and `backward`, are attached by `engine.methods` (a higher layer:
they need the registry and the autograd loop); this module holds only what is not an op.

The numpy array is the attribute `_a`, engine-internal. Outside the engine, read it through
`Tensor.array` (the array itself, no copy, whether or not the tensor requires grad) or torch's
`Tensor.numpy()` (the same array, refused on a tensor that requires grad)."""

from __future__ import annotations

import weakref

import numpy as np

from . import dtypes as _dt
from .errors import ArgumentError, DTypeError, GradError
from .graph import AccumulateGrad


class Tensor:
    __slots__ = ("_a", "_rg", "grad", "grad_fn", "_nr", "_acc", "_retain", "__weakref__")
    __array_priority__ = 1000  # so ndarray <op> Tensor defers to our reflected methods

    def __init__(self, array, requires_grad=False, grad_fn=None, output_nr=0):
        """The Tensor constructor: every slot set. (engine/fast sets the same slots one by
        one on `object.__new__(Tensor)`; tests/engine/test_constructors.py checks both.)"""
        self._a = array
        self._rg = requires_grad
        self.grad = None
        self.grad_fn = grad_fn
        self._nr = output_nr
        self._acc = None
        self._retain = False

    # -- attributes torch users reach for -------------------------------------------------
    @property
    def array(self) -> np.ndarray:
        """The numpy array holding the values: the storage itself, not a copy, and not cut
        from the graph (writing into it changes what the graph saved). Setting it replaces
        the storage, as `.data = ...` does, without autograd knowing."""
        return self._a

    @array.setter
    def array(self, value: np.ndarray) -> None:
        self._a = value

    @property
    def data(self) -> Tensor:
        """The same storage, cut from the graph (as torch's `.data`)."""
        return Tensor(self._a)

    @data.setter
    def data(self, value) -> None:
        self._a = value._a if isinstance(value, Tensor) else np.asarray(value, self._a.dtype)

    @property
    def shape(self) -> tuple:
        return self._a.shape

    def size(self, dim=None):
        return self._a.shape if dim is None else self._a.shape[dim]

    @property
    def dtype(self):
        return self._a.dtype

    @property
    def ndim(self) -> int:
        return self._a.ndim

    def dim(self) -> int:
        return self._a.ndim

    def numel(self) -> int:
        return self._a.size

    def __len__(self) -> int:
        if not self._a.ndim:
            raise TypeError("len() of a 0-d tensor")
        return len(self._a)

    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag) -> None:
        if self.grad_fn is not None:
            if flag:  # torch's two messages: only turning it off gets the detach() hint
                raise GradError("you can only change requires_grad flags of leaf variables.")
            raise GradError(
                "you can only change requires_grad flags of leaf variables. If you want to use "
                "a computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if flag and not _dt.is_floating(self._a.dtype):
            raise DTypeError(
                f"only Tensors of floating point dtype can require gradients (got {self.dtype})"
            )
        self._rg = bool(flag)

    def requires_grad_(self, requires_grad=True) -> Tensor:
        if requires_grad and self.grad_fn is not None:
            return self  # torch: a no-op on a non-leaf, which requires grad already
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def output_nr(self) -> int:
        return self._nr

    def retain_grad(self) -> None:
        if not self._rg:
            raise GradError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None or self._retain:
            return
        self._retain = True
        node = self.grad_fn
        if node.retained is None:
            node.retained = {}
        node.retained.setdefault(self._nr, []).append(weakref.ref(self))

    @property
    def retains_grad(self) -> bool:
        return self._retain

    def accumulator(self) -> AccumulateGrad:
        """The leaf's AccumulateGrad node, made once and shared by every edge into it."""
        acc = self._acc
        if acc is None:
            acc = self._acc = AccumulateGrad(self)
        return acc

    def detach(self) -> Tensor:
        return Tensor(self._a)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._rg = False
        return self

    def numpy(self) -> np.ndarray:
        """The numpy array itself (no copy, as torch's: they share memory). Refused on a
        tensor that requires grad; `.detach().numpy()` or `.array` reach it then."""
        if self._rg:
            raise GradError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        return self._a

    def item(self):
        if self._a.size != 1:
            raise ArgumentError(
                f"a Tensor with {self._a.size} elements cannot be converted to Scalar"
            )
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self._a.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self._a.size} values is ambiguous")
        return bool(self._a.item())

    def __index__(self) -> int:
        if self._a.dtype.kind not in "iub" or self._a.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._a.item())

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)

    __hash__ = object.__hash__  # __eq__ is elementwise, identity stays the hash

    def __repr__(self) -> str:
        body = np.array2string(self._a, separator=", ", prefix="tensor(", **_print_options(self._a))
        extras = []
        if (
            self._a.dtype != _dt.float32
            and self._a.dtype != _dt.int64
            and self._a.dtype != _dt.bool_
        ):
            extras.append(f"dtype=engine.{self._a.dtype}")
        elif self._a.dtype == _dt.float32 and self._a.size == 0:
            pass
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self._rg:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"


def _print_options(a: np.ndarray) -> dict:
    """torch's number formatting: integral floats as `1.`, others with 4 fixed decimals
    (`3.5000`); bools padded to the widest value present (`[True, True]`, `[ True, False]`)."""
    if a.dtype.kind == "f":
        finite = a[np.isfinite(a)]
        integral = finite.size == 0 or bool(np.all(finite == np.round(finite)))
        return {"precision": 4, "floatmode": "maxprec_equal" if integral else "fixed"}
    if a.dtype.kind == "b":
        width = 4 if a.all() else 5
        return {"formatter": {"bool": lambda v: str(bool(v)).rjust(width)}}
    return {}


def array_of(x):
    """x's numpy array when x is a Tensor, else x itself (a number or a constant array)."""
    a = getattr(x, "_a", None)
    return x if a is None else a


class Parameter(Tensor):
    """A leaf tensor that a Module registers; requires grad unless told otherwise."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        arr = data._a if isinstance(data, Tensor) else np.asarray(data, dtype=_dt.float32)
        super().__init__(arr, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
