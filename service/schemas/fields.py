"""Field helpers every schema module uses: optional members documented without a null
default, and the bound on listed names."""

from typing import Annotated, Any, TypeVar

from pydantic import (
    Field,
)


def drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def optional(description: str) -> Any:
    """A field that is absent rather than null, documented without a `null` default."""
    return Field(None, description=description, json_schema_extra=drop_default)


MAX_LISTED = 1000  # most entries a request may list in `outputs`, `wrt` or `backward`
T = TypeVar("T")
# The bound on the list itself: on an optional field it would also be applied to an explicit
# null, where pydantic raises TypeError (a 500) instead of a validation error.
Listed = Annotated[list[T], Field(max_length=MAX_LISTED)]
