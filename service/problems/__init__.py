"""RFC 9457 problem details, the one shape of every non-2xx answer: the catalogue of kinds and
the exception the domain raises (plain Python, no HTTP), how routes document them; the FastAPI
handlers that answer with them live apart, in `service.http.problems`."""

from service.problems.catalogue import PROBLEM_TYPES, ProblemType
from service.problems.errors import ProblemError, json_pointer
from service.problems.responses import (
    CLIENT_401,
    PROBLEM_MEDIA_TYPE,
    PROBLEM_RESPONSES,
    PROGRAM_422,
    PROGRAM_501,
    PROGRAM_503,
    RATE_429,
    problem_responses,
)

__all__ = [
    "CLIENT_401",
    "RATE_429",
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_RESPONSES",
    "PROBLEM_TYPES",
    "PROGRAM_422",
    "PROGRAM_501",
    "PROGRAM_503",
    "ProblemError",
    "ProblemType",
    "json_pointer",
    "problem_responses",
]
