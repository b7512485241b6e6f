"""Recycle large freed arrays instead of returning them to the kernel.

glibc serves allocations over 128 KiB-32 MiB with fresh mmap()s and unmaps them on free, so
every intermediate of a 10⁶-element op pays for page faults on first touch: measured here,
that was three quarters of a forward+backward on 10⁶ floats. Raising the mmap and trim
thresholds lets freed blocks be reused from the heap, which is what PyTorch's caching
allocator achieves on its side. Applied once at import; set ENGINE_MALLOC_CACHE=0 to opt
out. Elsewhere than glibc this does nothing."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
DEFAULT_BYTES = 512 * 1024 * 1024


def keep_freed_memory(max_bytes: int = DEFAULT_BYTES) -> bool:
    """Let the heap keep up to max_bytes of freed memory for reuse. True when applied."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # 32 MiB is glibc's documented maximum for the mmap threshold on 64-bit; larger arrays
    # keep their own mappings, the common sizes are recycled.
    ok = mallopt(_M_MMAP_THRESHOLD, min(max_bytes, 32 * 1024 * 1024))
    ok &= mallopt(_M_TRIM_THRESHOLD, max_bytes)
    return bool(ok)


def configure_from_env() -> bool:
    if os.environ.get("ENGINE_MALLOC_CACHE", "1") in ("0", "false", "no"):
        return False
    return keep_freed_memory()
