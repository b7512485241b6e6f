"""Swagger UI in a real headless Chromium, driven through the DevTools protocol: `/docs`
renders every operation of the spec, no request leaves 127.0.0.1, and "Try it out → Execute"
on /v1/evaluate shows the seed's gradients [36, 81]. A screenshot is saved with the test's
output (its tmp_path, or $TEST_ARTIFACTS_DIR when set)."""

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (scripts/test.sh installs it)"
)
TIMEOUT = 60.0
EVALUATE_BLOCK = "#operations-evaluate-evaluate_program"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    async def send(self, method: str, **params):
        call_id = next(self.ids)
        await self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    async def js(self, expression: str):
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")


def _start_chromium(profile: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            # Belt and braces: no host name resolves except the local server's address.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1280,1600",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + TIMEOUT
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise RuntimeError("chromium did not open its DevTools port")


@pytest.fixture
def browser(tmp_path):
    proc, ws_url = _start_chromium(tmp_path / "profile")
    port = int(re.search(r":(\d+)/", ws_url).group(1))
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def artifacts(tmp_path) -> Path:
    out = Path(os.environ.get("TEST_ARTIFACTS_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _page_ws(port: int) -> str:
    targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
    return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")


async def _session(port: int, base: str, spec: dict, screenshot: Path) -> dict:
    async with connect(_page_ws(port), max_size=None) as ws:
        page = DevTools(ws)
        await page.send("Network.enable")
        await page.send("Page.enable")
        await page.send("Page.navigate", url=f"{base}/docs")

        operations = [
            (method.upper(), path)
            for path, item in spec["paths"].items()
            for method in item
            if method in METHODS
        ]
        await page.wait_for(
            f"document.querySelectorAll('.opblock').length === {len(operations)}",
            f"{len(operations)} operations in Swagger UI",
        )
        listed = await page.js(
            "[...document.querySelectorAll('.opblock')].map(b => ["
            "b.querySelector('.opblock-summary-method').textContent.trim(), "
            "b.querySelector('.opblock-summary-path').getAttribute('data-path')])"
        )

        # Try it out -> Execute on the evaluate operation, with its first (the seed's) example.
        await page.js(
            f"document.querySelector('{EVALUATE_BLOCK} .opblock-summary-control').click()"
        )
        await page.wait_for(
            f"!!document.querySelector('{EVALUATE_BLOCK} .try-out__btn')", "Try it out button"
        )
        await page.js(f"document.querySelector('{EVALUATE_BLOCK} .try-out__btn').click()")
        await page.wait_for(
            f"!!document.querySelector('{EVALUATE_BLOCK} button.execute')", "Execute button"
        )
        request_body = await page.js(
            f"document.querySelector('{EVALUATE_BLOCK} textarea.body-param__text').value"
        )
        await page.js(f"document.querySelector('{EVALUATE_BLOCK} button.execute').click()")
        shown = await page.wait_for(
            f"(() => {{ const el = document.querySelector("
            f"'{EVALUATE_BLOCK} .live-responses-table .response-col_description pre'); "
            "return el && el.textContent.includes('grads') ? el.textContent : null; })()",
            "the response body",
        )
        status = await page.js(
            f"document.querySelector('{EVALUATE_BLOCK} .live-responses-table "
            ".response .response-col_status').textContent.trim()"
        )
        await page.js(
            f"document.querySelector('{EVALUATE_BLOCK} .live-responses-table')"
            ".scrollIntoView({block: 'center'})"
        )
        await asyncio.sleep(0.3)
        shot = await page.send("Page.captureScreenshot", format="png")
        screenshot.write_bytes(base64.b64decode(shot["data"]))

        urls = [
            e["params"]["request"]["url"]
            for e in page.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
        return {
            "operations": operations,
            "listed": listed,
            "request_body": request_body,
            "shown": shown,
            "status": status,
            "urls": urls,
        }


def test_swagger_ui_lists_everything_stays_local_and_executes_the_seed(
    live_server, browser, artifacts
):
    spec = httpx.get(f"{live_server}/openapi.json", timeout=10).json()
    screenshot = artifacts / "swagger-evaluate.png"
    seen = asyncio.run(_session(browser, live_server, spec, screenshot))

    assert sorted(map(tuple, seen["listed"])) == sorted(seen["operations"])
    assert json.loads(seen["request_body"])["expr"] == "Q = 3a³ − b²"
    assert seen["status"] == "200"
    answer = json.loads(seen["shown"])
    assert answer["grads"]["a"]["data"] == [36, 81]
    assert answer["grads"]["b"]["data"] == [-12, -8]
    assert answer["outputs"]["Q"]["data"] == [-12, 65]

    assert seen["urls"], "no network requests recorded"
    foreign = [u for u in seen["urls"] if not u.startswith((live_server + "/", "data:", "blob:"))]
    assert not foreign, f"requests left 127.0.0.1: {foreign}"
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")
