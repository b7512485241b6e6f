"""Running generated source so that tracebacks show it: each piece gets a filename of its
own (`<engine.fast backward of mul>`) and its lines go to `linecache`, where traceback,
pdb and inspect look them up."""

from __future__ import annotations

import linecache


def define(src: str, filename: str, scope: dict, name: str):
    """Execute generated `src` in `scope` and return what it defines as `name`."""
    # (size, mtime None: linecache.checkcache keeps the entry, there being no file to check)
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    exec(compile(src, filename, "exec"), scope)  # noqa: S102 - our own templates, no user text
    return scope[name]
