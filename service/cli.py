"""`autograd-service serve | healthcheck | openapi`: run the server, probe it, or write the
OpenAPI document."""

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
from service.http import logs
from service.settings import Settings
from service.store.factory import make_store, sqlite_path
from service.store.sqlite_schema import damage

FACTORY = "service.app:create_app"
DEFAULT_SPEC = Path("openapi/openapi.json")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    # Checked here, before any worker starts: a worker that failed its own start would leave
    # the others serving errors, and with several workers the process would still exit 0.
    problem = _store_damage(settings) or _store_unusable(settings)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    settings = Settings()
    args = build_parser(settings).parse_args(argv)
    return args.run(args, settings)
