"""The deployment files are valid and say what the README promises: docker-compose.yml against
the compose-spec JSON schema (check-jsonschema's vendored copy, no network), the Dockerfile
through hadolint, deploy/nginx.conf through `nginx -t`, and the facts each must keep."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy import compose, dockerfile, nginx
from tests.deploy.compose import COMPOSE_FILE, DOCKERFILE, REPO


def _tool(name: str) -> str:
    """A console script of the test extra, next to this Python or on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed; `bash scripts/test.sh` installs the tools")
    return found


def _validate(path: Path) -> subprocess.CompletedProcess:
    command = [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


# -- docker-compose.yml ---------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec_schema():
    result = _validate(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_does_catch_mistakes(tmp_path):
    """The validation is real: a misspelt key, an unknown top-level section and a condition
    compose does not know are each refused. (Numbers may be strings: compose interpolates
    variables into them.)"""
    for mistake in (
        lambda doc: doc["services"]["api"].__setitem__("depends_onn", ["redis"]),
        lambda doc: doc.__setitem__("servics", {}),
        lambda doc: doc["services"]["api"]["depends_on"]["redis"].__setitem__(
            "condition", "healthy"
        ),
    ):
        doc = yaml.safe_load(COMPOSE_FILE.read_text())
        mistake(doc)
        broken = tmp_path / "docker-compose.yml"
        broken.write_text(yaml.safe_dump(doc))
        assert _validate(broken).returncode != 0


def test_compose_runs_replicas_on_redis_behind_nginx():
    api, lb, redis = (compose.service(name) for name in ("api", "lb", "redis"))
    assert api["build"] == "."
    assert api["deploy"]["replicas"] >= 2
    assert "ports" not in api  # reached through the balancer only
    env = compose.api_environment()
    assert env["AUTOGRAD_STORE"] == "redis://redis:6379/0"
    assert env["AUTOGRAD_WORKERS"] == "1"
    assert api["depends_on"] == {"redis": {"condition": "service_healthy"}}

    assert re.fullmatch(r"nginx:[\w.-]+", lb["image"])  # the official image
    assert lb["ports"] == ["8000:8000"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in lb["volumes"]
    assert lb["depends_on"] == {"api": {"condition": "service_healthy"}}

    assert re.fullmatch(r"redis:[\w.-]+", redis["image"])
    args = compose.redis_args()
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in compose.compose()["volumes"]  # a named volume


# -- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_catch_mistakes(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install graphviz\nCMD autograd-service serve\n")
    result = subprocess.run([_tool("hadolint"), "--no-color", str(bad)], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode != 0
    # untagged base, unpinned packages, recommends pulled in, a shell-form CMD
    for rule in ("DL3006", "DL3008", "DL3015", "DL3025"):
        assert rule in result.stdout, result.stdout


def test_dockerfile_builds_a_slim_non_root_image_running_the_service():
    every, final = dockerfile.instructions(), dockerfile.final_stage()
    froms = [i.args for i in every if i.keyword == "FROM"]
    assert len(froms) == 2, "a build stage and a runtime stage"
    base = next(i.args for i in every if i.keyword == "ARG" and i.args.startswith("PYTHON_IMAGE"))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.1\d-slim(-\w+)?", base)

    runs = " ".join(i.args for i in final if i.keyword == "RUN")
    assert "graphviz" in runs and "--no-install-recommends" in runs
    assert "rm -rf /var/lib/apt/lists/*" in runs
    assert "pip install --no-cache-dir /tmp/wheels/*.whl" in runs  # no [test] extra
    assert not re.search(r"\b(gcc|build-essential|pytest|\.\[test\])\b", runs)

    (user,) = [i.args for i in final if i.keyword == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    assert f"--uid {uid}" in runs

    env = dockerfile.env()
    assert env["AUTOGRAD_HOST"] == "0.0.0.0"
    assert env["AUTOGRAD_WORKERS"] == "1"  # one worker per container; replicas scale
    assert [i.args for i in final if i.keyword == "EXPOSE"] == [env["AUTOGRAD_PORT"]]
    assert dockerfile.cmd() == ["autograd-service", "serve"]
    options, check = dockerfile.healthcheck()
    assert check == ["autograd-service", "healthcheck"]
    assert {"interval", "timeout", "start-period", "retries"} <= options.keys()


def test_dockerignore_lets_in_exactly_what_the_build_copies():
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule.removeprefix("!").rstrip("/") for rule in rules if rule.startswith("!")}
    copied = set()
    for instruction in dockerfile.instructions():
        if instruction.keyword == "COPY" and "--from" not in instruction.args:
            *sources, _ = instruction.args.split()
            copied.update(source.rstrip("/") for source in sources)
    assert copied == allowed
    for path in copied:
        assert (REPO / path).exists(), path


# -- deploy/nginx.conf ----------------------------------------------------------------------


def test_nginx_conf_is_valid_for_nginx(tmp_path):
    try:
        result = nginx.check(tmp_path, ["127.0.0.1:9"], 8000)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
