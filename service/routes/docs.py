"""Swagger UI 5 and ReDoc, served from assets installed with the package: no CDN.

The assets come from the `fastapi-offline` wheel (Swagger UI 5.32, ReDoc 2.5): pinned by pip
like any dependency, nothing minified in this repository, and no npm step to install. The
pages are FastAPI's own templates pointed at local URLs.
"""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from service.problems import ProblemError

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
ASSETS_PATH = "/docs/assets"

SWAGGER_UI_PARAMETERS = {
    "dom_id": "#swagger-ui",
    "layout": "BaseLayout",
    "deepLinking": True,
    "displayRequestDuration": True,
    "showExtensions": True,
    "showCommonExtensions": True,
    # Swagger UI would otherwise fetch a validity badge from validator.swagger.io.
    "validatorUrl": None,
}

router = APIRouter(include_in_schema=False)


def _urls(request: Request) -> tuple[str, str]:
    root = request.scope.get("root_path", "").rstrip("/")
    return root + (request.app.openapi_url or "/openapi.json"), root + ASSETS_PATH


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    spec_url, assets = _urls(request)
    return get_swagger_ui_html(
        openapi_url=spec_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon.png",
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )


@router.get("/redoc", response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    spec_url, assets = _urls(request)
    return get_redoc_html(
        openapi_url=spec_url,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{assets}/redoc.standalone.js",
        redoc_favicon_url=f"{assets}/favicon.png",
        with_google_fonts=False,
    )


@router.get(ASSETS_PATH + "/{name}")
async def docs_asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)  # a fixed list: no path from the URL touches the disk
    if media_type is None:
        raise ProblemError(404, "Not Found", f"No documentation asset {name!r}.")
    return FileResponse(
        ASSETS_DIR / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )
