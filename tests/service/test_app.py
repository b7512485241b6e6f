"""The factory, its lifespan-held state, the health probes and the route conventions."""

import importlib
import pkgutil
import shutil

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import service
from service import routes
from service.app import create_app
from service.http.routing import ORJSONRoute


def test_lifespan_puts_settings_on_app_state_and_creates_the_data_dir(settings):
    app = create_app(settings)
    assert not settings.data_dir.exists()
    with TestClient(app):
        assert app.state.settings is settings
        assert settings.data_dir.is_dir()


def test_no_module_holds_an_app_or_other_global_state():
    for info in pkgutil.walk_packages(service.__path__, "service."):
        if info.name == "service.__main__":
            continue
        module = importlib.import_module(info.name)
        apps = [name for name, value in vars(module).items() if isinstance(value, FastAPI)]
        assert apps == [], info.name


def test_two_apps_do_not_share_settings(tmp_path, settings):
    other = settings.model_copy(update={"data_dir": tmp_path / "other"})
    first, second = create_app(settings), create_app(other)
    with TestClient(first), TestClient(second):
        assert first.state.settings.data_dir != second.state.settings.data_dir


def test_livez(client):
    response = client.get("/livez")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_check(client):
    ready = {"status": "ready", "checks": {"data_dir": "ok", "store": "ok"}}
    assert client.get("/readyz").json() == ready


def test_readyz_is_503_when_the_data_dir_disappears(client, settings):
    shutil.rmtree(settings.data_dir)  # it holds the session store's SQLite file
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["type"] == "/problems/not-ready"
    assert body["checks"]["data_dir"] == f"missing: {settings.data_dir}"
    assert client.get("/livez").status_code == 200


def test_readyz_is_503_before_the_lifespan_ran(settings):
    response = TestClient(create_app(settings)).get("/readyz")  # no `with`: never started
    assert response.status_code == 503
    assert response.json()["detail"] == "The service has not finished starting."


def test_every_api_route_parses_json_with_orjson():
    routers = [
        importlib.import_module(info.name).router
        for info in pkgutil.iter_modules(routes.__path__, "service.routes.")
    ]
    api_routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    assert {r.path for r in api_routes} >= {"/livez", "/readyz", "/problems", "/docs"}
    for route in api_routes:
        assert isinstance(route, ORJSONRoute) or not route.include_in_schema, route.path


def test_fastapi_cdn_pages_are_disabled(settings):
    app = create_app(settings)
    assert (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) == (None,) * 3
