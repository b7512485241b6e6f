"""Typed dependencies for routes: what they need from `app.state`, looked up per request."""

from typing import Annotated

from fastapi import Depends, Request

from service.problems import PROBLEM_TYPES
from service.settings import Settings
from service.store import SessionStore


def settings_of(request: Request) -> Settings:
    """The app's settings; a not-ready problem before the lifespan has run."""
    settings = getattr(request.app.state, "settings", None)
    if settings is None:  # the lifespan has not run: the app is not started
        raise PROBLEM_TYPES["not-ready"].error("The service has not finished starting.")
    return settings


# Async so that FastAPI calls it on the event loop: a plain `def` dependency costs a round
# trip through the threadpool on every request.
async def get_settings(request: Request) -> Settings:
    return settings_of(request)


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_store(request: Request) -> SessionStore:
    store = getattr(request.app.state, "store", None)
    if store is None:  # the lifespan has not run: the app is not started
        raise PROBLEM_TYPES["not-ready"].error("The session store is not open yet.")
    return store


StoreDep = Annotated[SessionStore, Depends(get_store)]
