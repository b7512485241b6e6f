"""What the image runs, without Docker: the wheel the build stage makes from exactly the files
the Dockerfile copies, installed on its own, then the image's CMD with the image's ENV, probed
by the image's HEALTHCHECK as Docker would, and stopped with SIGTERM as `docker stop` does.

Only the interface differs: the server listens on 127.0.0.1 and a free port (the image says
0.0.0.0:8000)."""

import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.examples import programs as examples
from tests.deploy import dockerfile
from tests.deploy.compose import REPO
from tests.service.conftest import free_port

STARTUP_SECONDS = 30
TEST_ONLY = ("pytest", "hypothesis", "torch", "ruff", "schemathesis", "hadolint")


def _copied_sources() -> list[str]:
    """The build stage's COPY sources: the build context it sees."""
    build = [i for i in dockerfile.instructions() if i.stage == 0 and i.keyword == "COPY"]
    return [source for i in build for source in i.args.split()[:-1]]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The build stage's `pip wheel --no-deps`, then the runtime stage's install (here into
    a directory of its own: the dependencies are this environment's)."""
    root = tmp_path_factory.mktemp("image")
    context, wheels, target = root / "context", root / "wheels", root / "site"
    for source in _copied_sources():
        src = REPO / source
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy(src, context / source)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # No build isolation: setuptools is already here, and the test needs no network.
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir",
                    str(wheels), str(context)], check=True, cwd=root)  # fmt: skip
    (wheel,) = wheels.glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)  # fmt: skip
    return wheel


def _env(target: Path, port: int, data_dir: Path) -> dict[str, str]:
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRAD_")}
    environ.update(dockerfile.env())
    environ.update({
        "AUTOGRAD_HOST": "127.0.0.1",  # the image's 0.0.0.0: every interface
        "AUTOGRAD_PORT": str(port),
        "AUTOGRAD_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(target),
        "PATH": f"{target / 'bin'}{os.pathsep}{environ.get('PATH', '')}",
    })  # fmt: skip
    return environ


@pytest.fixture(scope="module")
def container(installed, tmp_path_factory) -> Iterator[tuple[str, dict, subprocess.Popen]]:
    target = installed.parent.parent / "site"
    data_dir = tmp_path_factory.mktemp("container") / "data"
    data_dir.mkdir()
    port = free_port()
    env = _env(target, port, data_dir)
    log = open(data_dir.parent / "container.log", "wb")  # noqa: SIM115 - the process's
    # WORKDIR is the data directory; the source tree is nowhere on the path.
    proc = subprocess.Popen(dockerfile.cmd(), cwd=data_dir, env=env, stdout=log, stderr=log)
    log.close()
    try:
        yield f"http://127.0.0.1:{port}", env, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _healthcheck(env: dict, cwd: Path) -> subprocess.CompletedProcess:
    _, command = dockerfile.healthcheck()
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=30)


def test_the_wheel_holds_the_service_and_no_test_dependency(installed):
    with zipfile.ZipFile(installed) as wheel:
        names = wheel.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [line for line in wheel.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist:")]  # fmt: skip
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith("-info")}
    assert packages == {"engine", "service"}
    unconditional = [r for r in requires if "extra ==" not in r]
    assert any("prometheus-client" in r or "prometheus_client" in r for r in unconditional)
    for name in TEST_ONLY:
        assert not any(name in r.lower() for r in unconditional), name


def test_the_image_command_serves_and_its_healthcheck_says_so(container):
    base, env, proc = container
    cwd = Path(env["AUTOGRAD_DATA_DIR"])
    probe = [sys.executable, "-c", "import service; print(service.__file__)"]
    where = subprocess.run(probe, env=env, cwd=cwd, capture_output=True, text=True, check=True)
    assert not where.stdout.startswith(str(REPO)), "the source tree, not the installed wheel"

    deadline = time.monotonic() + STARTUP_SECONDS  # Docker's start period, retried
    while (check := _healthcheck(env, cwd)).returncode != 0:
        assert proc.poll() is None, (cwd.parent / "container.log").read_text()
        assert time.monotonic() < deadline, check.stderr
        time.sleep(0.2)

    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.get("/readyz").json()["checks"] == {"data_dir": "ok", "store": "ok"}
        docs = http.get("/docs")
        assert docs.status_code == 200 and "swagger-ui" in docs.text
        assert http.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
        svg = http.post("/v1/evaluate", json=examples.EVALUATE["seed"]["value"],
                        headers={"Accept": "image/svg+xml"})  # fmt: skip
        assert svg.status_code == 200, svg.text  # Graphviz, as the image installs it
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in svg.text


def test_docker_stop_ends_it_cleanly_and_the_healthcheck_then_fails(container):
    base, env, proc = container
    if proc.poll() is not None or httpx.get(f"{base}/livez", timeout=5).status_code != 200:
        pytest.fail("the server is not running")
    proc.send_signal(signal.SIGTERM)  # exec form: the signal reaches the server itself
    # Uvicorn shuts down gracefully, then re-raises the signal it caught (Docker: exit 143).
    assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
    log = (Path(env["AUTOGRAD_DATA_DIR"]).parent / "container.log").read_text()
    assert "Application shutdown complete" in log
    check = _healthcheck(env, Path(env["AUTOGRAD_DATA_DIR"]))
    assert check.returncode == 1 and "not ready" in check.stderr
