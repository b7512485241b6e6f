"""An app whose start fails after the store check passed (its lifespan raises): what
`run_workers` must turn into a non-zero exit."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI


def create_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("this app never starts")
        yield

    return FastAPI(lifespan=lifespan)
