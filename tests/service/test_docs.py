"""Swagger UI and ReDoc are served from the installed package, and reference nothing remote."""

import re

import pytest

ATTRIBUTE_URLS = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""")
SCRIPT_URLS = re.compile(r"""\burl\s*:\s*["']([^"']+)["']""")


def local_urls(html: str) -> list[str]:
    urls = ATTRIBUTE_URLS.findall(html) + SCRIPT_URLS.findall(html)
    assert urls, "found no URLs: the page template changed?"
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
    assert "http://" not in html and "https://" not in html
    return urls


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        (
            "/docs",
            {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"},
        ),
        ("/redoc", {"/docs/assets/redoc.standalone.js"}),
    ],
)
def test_pages_reference_only_local_assets(client, page, assets):
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    urls = set(local_urls(response.text))
    assert assets | {"/openapi.json", "/docs/assets/favicon.png"} == urls


def test_swagger_ui_is_version_5_and_asks_no_online_validator(client):
    html = client.get("/docs").text
    assert '"validatorUrl": null' in html
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("text/javascript")
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.(\d+)"', bundle.text)
    assert version and version.group(1) == "5", "OpenAPI 3.1 needs Swagger UI 5"


def test_redoc_is_version_2(client):
    bundle = client.get("/docs/assets/redoc.standalone.js")
    assert bundle.status_code == 200
    version = re.search(r'"\s*ReDoc Version: ","(\d+)\.\d+\.\d+"', bundle.text)
    assert version and version.group(1) == "2"


@pytest.mark.parametrize(
    ("name", "media_type", "starts_with"),
    [
        ("swagger-ui.css", "text/css", b".swagger-ui"),
        ("favicon.png", "image/png", b"\x89PNG"),
    ],
)
def test_assets_are_served_with_their_media_type_and_cached(client, name, media_type, starts_with):
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["cache-control"] == "public, max-age=86400"
    assert response.content.startswith(starts_with)


@pytest.mark.parametrize(
    "name", ["missing.js", "..%2F..%2Fapp.py", "%2E%2E%2Fstatic%2Fswagger-ui.css"]
)
def test_only_listed_assets_are_served(client, name):
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_the_spec_the_pages_load_is_openapi_3_1(client):
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["title"] == "Autograd Service"
