"""The problem types the service reports, so that every `type` URI resolves to its meaning."""

from fastapi import APIRouter

from service.http.routing import ORJSONRoute
from service.problems import PROBLEM_TYPES, ProblemError, ProblemType, problem_responses
from service.schemas.problems import ProblemTypePublic

router = APIRouter(prefix="/problems", tags=["problems"], route_class=ORJSONRoute)


def _public(problem: ProblemType) -> ProblemTypePublic:
    return ProblemTypePublic(
        type=problem.uri,
        status=problem.status,
        title=problem.title,
        description=problem.description,
    )


@router.get(
    "",
    summary="List problem types",
    response_model=list[ProblemTypePublic],
    responses=problem_responses(500),
)
async def list_problem_types() -> list[ProblemTypePublic]:
    """Every problem type, by slug."""
    return [_public(p) for p in PROBLEM_TYPES.values()]


@router.get(
    "/{slug}",
    summary="Describe a problem type",
    response_model=ProblemTypePublic,
    responses=problem_responses(404, 500),
)
async def get_problem_type(slug: str) -> ProblemTypePublic:
    """What one problem `type` means and what to do about it."""
    problem = PROBLEM_TYPES.get(slug)
    if problem is None:
        raise ProblemError(404, "Not Found", f"No problem type {slug!r}; GET /problems lists them.")
    return _public(problem)
