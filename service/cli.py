"""`autograd-service serve | healthcheck | openapi | keys`: run the server, probe it, write
the OpenAPI document, or manage the API keys file."""

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.main import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from service import metrics
from service.clients import keys as api_keys
from service.http import logs
from service.settings import Settings
from service.store.factory import make_store, sqlite_path
from service.store.sqlite_schema import damage

FACTORY = "service.app:create_app"
DEFAULT_SPEC = Path("openapi/openapi.json")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    # Checked here, before any worker starts: a worker that failed its own start would leave
    # the others serving errors, and with several workers the process would still exit 0.
    problem = _store_damage(settings) or _store_unusable(settings) or _keys_problem(settings)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    options = {
        "factory": True,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "log_level": settings.log_level,
        "log_config": logs.config(settings),
        "access_log": False,  # the service writes its own, with the route and request id
    }
    # Each worker process calls the factory itself and reads AUTOGRAD_* from the environment.
    with _metrics_dir(args.workers):
        if args.workers > 1:
            return run_workers(FACTORY, **options)
        uvicorn.run(FACTORY, **options)  # exits 3 itself if the app fails to start
    return 0


def run_workers(app: str, **options: Any) -> int:
    """`uvicorn.run` with several workers, but 1 if one failed to start: uvicorn's supervisor
    then stops the others and returns as after a clean shutdown, and the process exited 0,
    so a restart policy did not react. Anything the start check above misses lands here."""
    config = uvicorn.Config(app, **options)
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    with suppress(KeyboardInterrupt):
        supervisor.run()
    failed = [p.pid for p in supervisor.processes if p.exitcode == STARTUP_FAILURE]
    if failed:
        print(f"autograd-service: worker {failed[0]} failed to start; stopped.", file=sys.stderr)
        return 1
    return 0


def _store_damage(settings: Settings) -> str | None:
    """Why the embedded SQLite store must not be served (a damaged file), or None."""
    if settings.store != "sqlite":
        return None
    path = sqlite_path(settings)
    found = damage(path)
    if found is None:
        return None
    return (
        f"autograd-service: the session store {path} is damaged ({found}); not serving it. "
        "Restore the file from a backup, or move it away to start with an empty store."
    )


def _keys_problem(settings: Settings) -> str | None:
    """Why the API keys file cannot be used (a server told to need keys must not start open)."""
    if settings.api_keys_file is None:
        return None
    try:
        api_keys.load(settings.api_keys_file)
    except api_keys.KeyFileError as exc:
        return f"autograd-service: AUTOGRAD_API_KEYS_FILE is unusable: {exc}"
    return None


def _keys_file(args: argparse.Namespace, settings: Settings) -> Path:
    path = args.file or settings.api_keys_file
    if path is None:
        raise api_keys.KeyFileError("no keys file: pass --file or set AUTOGRAD_API_KEYS_FILE")
    return path


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    try:
        path = _keys_file(args, settings)
        if args.action == "add":
            quotas = {"max_sessions": args.sessions, "max_bytes": args.bytes,
                      "rate": args.rate, "burst": args.burst}  # fmt: skip
            key = api_keys.add(path, args.name, **quotas)
            print(key)  # the only time the key is shown: the file keeps its hash
            print(f"added {args.name!r} to {path}; give the key above to its holder, it is "
                  "not stored (servers pick it up within a second)", file=sys.stderr)  # fmt: skip
        elif args.action == "remove":
            if not api_keys.remove(path, args.name):
                print(f"no key named {args.name!r} in {path}", file=sys.stderr)
                return 1
        else:
            for entry in api_keys.load(path):
                quotas = {k: v for k, v in entry.document().items() if k not in ("name", "sha256")}
                print(entry.name, " ".join(f"{k}={v}" for k, v in quotas.items()))
    except api_keys.KeyFileError as exc:
        print(f"autograd-service keys: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_keys_parser(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="manage the API keys file (AUTOGRAD_API_KEYS_FILE)")
    keys.add_argument("--file", type=Path, help="default: $AUTOGRAD_API_KEYS_FILE")
    actions = keys.add_subparsers(dest="action", required=True)
    add = actions.add_parser(
        "add", help="make a key: print it once, store its hash and quotas in the file"
    )
    add.add_argument("name", help="the client's name (1-64 of A-Za-z0-9._-)")
    what = "(default: AUTOGRAD_%s; 0: no cap of its own)"
    add.add_argument(
        "--sessions", type=int, help="most live sessions " + what % "MAX_CLIENT_SESSIONS"
    )
    add.add_argument("--bytes", type=int, help="most stored bytes " + what % "MAX_CLIENT_BYTES")
    add.add_argument("--rate", type=float, help="requests per second " + what % "RATE_LIMIT")
    add.add_argument("--burst", type=int, help="requests at once " + what % "RATE_BURST")
    remove = actions.add_parser("remove", help="revoke a key (its sessions stay until idle)")
    remove.add_argument("name")
    actions.add_parser("list", help="the keys' names and quotas")
    keys.set_defaults(run=_keys)


def _store_unusable(settings: Settings) -> str | None:
    """Why the session store cannot be opened, as each worker will open it (its data
    directory cannot be made, Redis does not answer...), or None."""
    try:
        store = make_store(settings)
        try:
            store.count()
        finally:
            store.close()
    except Exception as exc:  # whatever a worker's start would have died of
        where = settings.store if settings.store != "sqlite" else sqlite_path(settings)
        return f"autograd-service: cannot open the session store {where}: {exc}"
    return None


@contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    """With several workers, a PROMETHEUS_MULTIPROC_DIR that they inherit, empty at start, so
    that /metrics sums every worker's counts. Set for the server's lifetime only; a directory
    made here is removed when it stops."""
    if workers <= 1 and metrics.MULTIPROC_ENV not in os.environ:
        yield
        return
    before = os.environ.get(metrics.MULTIPROC_ENV)
    path, made = metrics.prepare_multiprocess_dir(
        lambda: tempfile.mkdtemp(prefix="autograd-metrics-")
    )
    os.environ[metrics.MULTIPROC_ENV] = path
    try:
        yield
    finally:
        if before is None:
            del os.environ[metrics.MULTIPROC_ENV]
        if made:
            shutil.rmtree(path, ignore_errors=True)


def _openapi(args: argparse.Namespace, settings: Settings) -> int:
    from service.app import create_app
    from service.http.openapi import render_openapi

    text = render_openapi(create_app(settings).openapi())
    if str(args.output) == "-":
        sys.stdout.write(text)
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _healthcheck(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 if the local server answers GET /readyz with 200, else 1: a container
    HEALTHCHECK with Python's urllib, since slim images have no curl."""
    import urllib.error
    import urllib.request

    url = args.url or f"http://127.0.0.1:{settings.port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:  # 503 and other non-2xx answers
        status = exc.code
    except OSError as exc:  # refused, timed out, unresolvable
        print(f"not ready: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"not ready: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autograd-service",
        description="Autograd Service. Settings come from AUTOGRAD_* environment variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server (uvicorn)")
    serve.add_argument("--host", default=settings.host, help="default: %(default)s")
    serve.add_argument("--port", type=int, default=settings.port, help="default: %(default)s")
    serve.add_argument("--workers", type=int, default=settings.workers, help="default: %(default)s")
    serve.set_defaults(run=_serve)

    check = commands.add_parser(
        "healthcheck", help="exit 0 if the server on this machine is ready (GET /readyz)"
    )
    check.add_argument(
        "--url", help="probe this URL instead (default: http://127.0.0.1:$AUTOGRAD_PORT/readyz)"
    )
    check.add_argument("--timeout", type=float, default=3.0, help="seconds (default: 3)")
    check.set_defaults(run=_healthcheck)

    spec = commands.add_parser("openapi", help="write the OpenAPI document")
    spec.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_SPEC,
        help="file to write, or - for stdout (default: %(default)s)",
    )
    spec.set_defaults(run=_openapi)
    _add_keys_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    settings = Settings()
    args = build_parser(settings).parse_args(argv)
    return args.run(args, settings)
