"""Session tokens and request fingerprints.

A token is 32 random bytes, so a single sha256 is enough: there is nothing to brute-force
that a slow hash (scrypt) would protect. Only the hash is stored; a leaked store file does
not let anyone call the API as the session's owner.
"""

import hashlib
import hmac
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_session_id() -> str:
    return secrets.token_hex(16)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def verify_token(token: str | None, token_hash: str) -> bool:
    """Constant-time: the time taken does not reveal how much of a guess was right."""
    if token is None:
        return False
    return hmac.compare_digest(hash_token(token), token_hash)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """Identifies a request for Idempotency-Key reuse checks; lengths prevent ambiguity."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()
