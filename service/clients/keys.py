"""API keys and the file that holds them (AUTOGRAD_API_KEYS_FILE).

The file is JSON, written by `autograd-service keys add` so that nobody hashes by hand:

    {"version": 1,
     "keys": [{"name": "alice", "sha256": "<hex digest of the key>",
               "max_sessions": 10, "max_bytes": 1073741824, "rate": 20, "burst": 40}]}

Only the SHA-256 of each key is stored. A key is 32 random bytes, so one plain hash is
enough (nothing to brute-force that a slow hash would protect, as for session tokens), and a
leaked file opens nothing. `name` (1-64 of `A-Za-z0-9._-`) names the client in refusals and
owns its sessions; each quota left out takes the setting's value (AUTOGRAD_MAX_CLIENT_SESSIONS,
_MAX_CLIENT_BYTES, _RATE_LIMIT, _RATE_BURST), and 0 is "no cap of its own".
"""

import hashlib
import json
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
KEY_PREFIX = "agk_"  # makes a leaked key easy to recognise (secret scanners, logs)
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEX = re.compile(r"[0-9a-f]{64}")
QUOTAS = ("max_sessions", "max_bytes", "rate", "burst")


class KeyFileError(ValueError):
    """The keys file cannot be read or is not in the documented format."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    max_sessions: int | None = None  # None: the setting's value
    max_bytes: int | None = None
    rate: float | None = None  # requests per second
    burst: int | None = None

    @property
    def owner(self) -> str:
        """What its sessions are recorded as belonging to (never an address's `addr:`)."""
        return f"key:{self.name}"

    def document(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _entry(item: Any, where: str) -> ApiKey:
    if not isinstance(item, dict):
        raise KeyFileError(f"{where}: expected an object")
    unknown = item.keys() - {"name", "sha256", *QUOTAS}
    if unknown:
        raise KeyFileError(f"{where}: unknown members {sorted(unknown)}")
    name, digest = item.get("name"), item.get("sha256")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise KeyFileError(f"{where}: name must be 1-64 of A-Za-z0-9._-")
    if not isinstance(digest, str) or not _HEX.fullmatch(digest):
        raise KeyFileError(f"{where}: sha256 must be 64 lowercase hex digits")
    quotas = {}
    for member in QUOTAS:
        value = item.get(member)
        number = (int, float) if member == "rate" else (int,)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, number) or value < 0
        ):
            raise KeyFileError(f"{where}: {member} must be a number >= 0")
        quotas[member] = value
    return ApiKey(name, digest, **quotas)


def parse(text: str) -> list[ApiKey]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
        raise KeyFileError(f'expected an object with "version": {FORMAT_VERSION}')
    items = document.get("keys")
    if not isinstance(items, list):
        raise KeyFileError('expected "keys": a list')
    keys = [_entry(item, f"keys[{i}]") for i, item in enumerate(items)]
    for what in ("name", "sha256"):
        values = [getattr(k, what) for k in keys]
        if len(set(values)) != len(values):
            raise KeyFileError(f"two keys have the same {what}")
    return keys


def load(path: Path) -> list[ApiKey]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror or exc}") from None
    try:
        return parse(text)
    except KeyFileError as exc:
        raise KeyFileError(f"{path}: {exc}") from None


def save(path: Path, keys: list[ApiKey]) -> None:
    """Write the whole file at once (a temporary file renamed over it), readable by its owner
    only: a server reading it meanwhile sees the old file or the new one, never half."""
    document = {"version": FORMAT_VERSION, "keys": [k.document() for k in keys]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".keys-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2)
            f.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def add(path: Path, name: str, **quotas: Any) -> str:
    """A new key named `name` with these quotas (None: the settings'), appended to the file
    (made if absent); returns the key, which is stored nowhere."""
    keys = load(path) if path.exists() else []
    if any(k.name == name for k in keys):
        raise KeyFileError(f"{path}: a key named {name!r} exists; remove it first")
    key = new_key()
    entry = _entry({"name": name, "sha256": hash_key(key), **quotas}, name)
    save(path, [*keys, entry])
    return key


def remove(path: Path, name: str) -> bool:
    keys = load(path)
    kept = [k for k in keys if k.name != name]
    if len(kept) != len(keys):
        save(path, kept)
    return len(kept) != len(keys)
