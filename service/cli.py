"""`autograd-service serve | openapi`: run the server, or write the OpenAPI document."""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from service.settings import Settings

FACTORY = "service.app:create_app"
DEFAULT_SPEC = Path("openapi/openapi.json")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    # Each worker process calls the factory itself and reads AUTOGRAD_* from the environment.
    uvicorn.run(
        FACTORY,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level,
    )
    return 0


def _openapi(args: argparse.Namespace, settings: Settings) -> int:
    from service.app import create_app
    from service.openapi import render_openapi

    text = render_openapi(create_app(settings).openapi())
    if str(args.output) == "-":
        sys.stdout.write(text)
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
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
