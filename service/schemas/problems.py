"""Problem documents (RFC 9457) and the catalogue's entries, as OpenAPI describes them."""

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)
from pydantic.json_schema import SkipJsonSchema

from service.schemas.fields import optional


class ProblemErrorItem(BaseModel):
    """One invalid part of the request."""

    detail: str = Field(description="What is wrong with this part.")
    pointer: str | SkipJsonSchema[None] = optional(
        'RFC 6901 JSON pointer into the request body ("" is the whole body).'
    )
    parameter: str | SkipJsonSchema[None] = optional(
        "Name of the query, path, header or cookie parameter, when not in the body."
    )


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every non-2xx answer."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/invalid-tensor",
                    "title": "Invalid tensor",
                    "status": 422,
                    "detail": "data has 5 elements but shape [2, 3] needs 6",
                    "instance": "/v1/evaluate",
                    "errors": [{"pointer": "/inputs/a/data", "detail": "5 elements, need 6"}],
                }
            ]
        },
    )

    type: str = Field(
        "about:blank",
        description='URI of the problem type; "about:blank" for a plain HTTP status, '
        "otherwise a path under /problems/ describing it.",
    )
    title: str = Field(description="Short summary of the problem type; fixed per type.")
    status: int = Field(description="The HTTP status code of this answer.")
    detail: str = Field(description="What went wrong in this occurrence.")
    instance: str | SkipJsonSchema[None] = optional("Path of the request that failed.")
    errors: list[ProblemErrorItem] | SkipJsonSchema[None] = optional(
        "Each invalid field of the request."
    )
    request_id: str | SkipJsonSchema[None] = optional(
        "The request's id: its `X-Request-ID` header when that was safe (at most 128 "
        "letters, digits and `._:=+/@-`), else one the server made; also in the answer's "
        "`X-Request-ID` header and in the server's log lines for the request."
    )


class ProblemTypePublic(BaseModel):
    """One documented problem type."""

    type: str = Field(description="The `type` member problems of this kind carry.")
    status: int
    title: str
    description: str
