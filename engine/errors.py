"""The engine's exceptions. Messages follow PyTorch's wording so its users recognise them,
and always name the op, the shapes involved and the fix."""


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class ShapeError(EngineError, ValueError):
    """Operands whose shapes do not fit the op (matmul, broadcasting, reshape...)."""

    def __init__(self, message: str, *, op: str | None = None, shapes=()):
        super().__init__(message)
        self.op = op
        self.shapes = [tuple(s) for s in shapes]


class DTypeError(EngineError, TypeError):
    """An operand of a dtype the op does not accept (e.g. gradients of integer tensors)."""


class ArgumentError(EngineError, ValueError):
    """An op attribute out of range or of the wrong kind (dim, p, reduction...)."""


class SignatureError(ArgumentError, TypeError):
    """A call that leaves out an argument the function requires (`x.expand()`): a TypeError,
    as torch's argument parser raises, and an ArgumentError, as the engine reports it."""


class GradError(EngineError, RuntimeError):
    """A backward pass that cannot run: non-scalar without gradient, freed graph, ..."""


class UnknownOpError(EngineError, KeyError):
    """A name that is not in the op registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DeadlineExceeded(Exception):  # noqa: N818 - named for what happened, as TimeoutError
    """A computation ran past the time limit its caller set (engine.deadline). Not an
    EngineError: nothing is wrong with the program, and handlers that turn engine errors
    into a 4xx "your program is wrong" must let it through."""

    def __init__(self, seconds: float):
        super().__init__(f"the computation ran past its time limit of {seconds:g} s")
        self.seconds = seconds
