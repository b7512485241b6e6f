"""Logging for `serve`: one JSON object per line (AUTOGRAD_LOG_FORMAT=json, the default) or
plain text, for uvicorn's own messages and the service's alike.

Every line written while a request is served carries its `request_id`. The access log is
the service's (`service.access`, written by `service.http.observability`): one line per request
with method, route template, status, duration and request id. Uvicorn's own access log is
off, as it knows neither the route nor the id.
"""

import json
import logging
import time
from typing import Any

from service.http import request_id
from service.settings import Settings

ACCESS_LOGGER = "service.access"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


def _timestamp(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


class JSONFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", "pid", "request_id"?, ...extra,
    "exception"?}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker, when there are several
        }
        rid = getattr(record, "request_id", None) or request_id.current()
        if rid is not None:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger message [request_id=...]`, for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = getattr(record, "request_id", None) or request_id.current()
        return text if rid is None else f"{text} request_id={rid}"


def config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` document; uvicorn applies it in every worker."""
    formatter = {"json": JSONFormatter, "text": TextFormatter}[settings.log_format]
    level = settings.log_level.upper()
    level = "DEBUG" if level == "TRACE" else level  # uvicorn's trace level is below DEBUG
    handler = {"class": "logging.StreamHandler", "formatter": "default",
               "stream": "ext://sys.stderr"}  # fmt: skip
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "service": {"handlers": ["default"], "level": level, "propagate": False},
            "engine": {"handlers": ["default"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }
