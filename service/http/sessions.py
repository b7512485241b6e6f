"""The HTTP protocol around a session: bearer tokens, ETags and If-Match (RFC 9110),
Idempotency-Key replays, and the one commit every mutating call makes.

Access: a request without `Authorization: Bearer <token>` is refused with 401 before the
session is looked up, so it learns nothing; a token that does not open the session gets the
same 404 as a session that does not exist (or has expired), in about the same time.

A mutating call reads the session, computes its change with the engine, and commits it with
compare-and-set on the version it read. With If-Match, a commit that lost the race answers
412; without, the call is recomputed on the new version (a few times, then 409). The answer
to a call with an Idempotency-Key is committed in the same transaction as its change, so a
retry replays it and never applies the change twice.
"""

import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import Response

from engine.deadline import deadline
from service.http.negotiation import JSON
from service.problems import PROBLEM_TYPES, ProblemError
from service.sessions.outcome import Outcome
from service.store import (
    KeyReused,
    QuotaExceeded,
    SessionMeta,
    SessionNotFound,
    SessionRecord,
    SessionStore,
    StorageFault,
    StoredResponse,
    StoreUnavailable,
    VersionConflict,
    hash_token,
    request_fingerprint,
    verify_token,
)
from service.store.records import BUFFER, GRAD, PARAM
from service.wire import jsonio

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 8  # recomputations of a call without If-Match that keeps losing races
TOUCH_SECONDS = 1.0  # reads mark a session used at most this often (each mark is a write)
REPLAYED = "Idempotent-Replayed"
_BEARER = re.compile(r"Bearer[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*", re.IGNORECASE)
_UNUSED_HASH = hash_token("no session has this token")


def bearer(authorization: str | None) -> str:
    found = _BEARER.fullmatch(authorization or "")
    if found is None:
        what = "no Authorization header" if authorization is None else "no Bearer token"
        raise PROBLEM_TYPES["unauthorized"].error(
            f"The request has {what}: send `Authorization: Bearer <token>` with the token "
            "the session was created with.",
            headers={"WWW-Authenticate": 'Bearer realm="sessions"'},
        )
    return found.group(1)


def not_found(session_id: str) -> ProblemError:
    return PROBLEM_TYPES["session-not-found"].error(
        f"No session {session_id!r} that this token opens: it does not exist, it expired "
        "after being idle, or the token is another session's.",
        session_id=session_id,
    )


def authorize(session: SessionMeta | None, token: str, session_id: str) -> SessionMeta:
    if session is None:
        verify_token(token, _UNUSED_HASH)  # the same work as for a wrong token
        raise not_found(session_id)
    if not verify_token(token, session.token_hash):
        raise not_found(session_id)
    return session


def etag(version: int) -> str:
    return f'"{version}"'


def matches(if_match: str, version: int) -> bool:
    """RFC 9110 §13.1.1: `*`, or one of the listed entity tags by strong comparison."""
    tags = [t.strip() for t in if_match.split(",")]
    return "*" in tags or etag(version) in tags


def precondition_failed(if_match: str, version: int) -> ProblemError:
    return PROBLEM_TYPES["precondition-failed"].error(
        f"If-Match {if_match} does not match the session's current ETag {etag(version)}: "
        "it changed since you read it. Read it again (the ETag header) and retry.",
        headers={"ETag": etag(version)},
        etag=etag(version),
        version=version,
    )


FULL_RETRY_SECONDS = 60  # the whole store full with no live session to wait for (not seen)


def quota(exc: QuotaExceeded) -> ProblemError:
    """A cap the write would pass: the client's own share is 429 and the whole store 507,
    each with when to retry; a write that could never fit (over the session cap, or alone
    over its client's or the store's) is 422, since retrying cannot help."""
    members = {"limit": exc.limit, "value": exc.value, "maximum": exc.maximum}
    setting = f"AUTOGRAD_{exc.limit.upper()}"
    if exc.limit == "max_session_bytes":
        return PROBLEM_TYPES["limit-exceeded"].error(
            f"The session would store {exc.value} bytes; the limit is {exc.maximum} ({setting}).",
            **members,
        )
    if exc.retry_after is None and exc.limit.endswith("_bytes"):
        whose = f"your quota ({exc.owner})" if exc.owner else f"the store's limit ({setting})"
        return PROBLEM_TYPES["limit-exceeded"].error(
            f"This session alone is larger than {whose} of {exc.maximum} bytes: no wait "
            "makes room for it.",
            **members,
        )
    what = "sessions" if exc.limit.endswith("sessions") else "bytes"
    wait = _seconds(exc.retry_after, FULL_RETRY_SECONDS)
    if exc.limit in QuotaExceeded.CLIENT:
        return PROBLEM_TYPES["quota-exceeded"].error(
            f"Your sessions would hold {exc.value} {what}; your quota is {exc.maximum} "
            f"({exc.owner}). Delete sessions you no longer need, or retry in {wait} s, when "
            "your earliest one expires if unused.",
            headers={"Retry-After": str(wait)},
            client=exc.owner,
            **members,
        )
    return PROBLEM_TYPES["store-full"].error(
        f"The store would hold {exc.value} {what}; the limit is {exc.maximum} ({setting}). "
        f"Delete sessions you no longer need, or retry in {wait} s, when the earliest "
        "session expires if unused.",
        headers={"Retry-After": str(wait)},
        **members,
    )


def _seconds(wait: float | None, otherwise: int) -> int:
    """Retry-After's delay-seconds (RFC 9110 §10.2.3): a whole number, at least 1."""
    return otherwise if wait is None else max(1, math.ceil(wait))


def unavailable(exc: StoreUnavailable) -> ProblemError:
    if isinstance(exc, StorageFault):
        return storage_fault(exc)
    log.warning("session store unavailable: %r", exc.__cause__ or exc)
    return PROBLEM_TYPES["not-ready"].error(
        "The session store is not answering; retry shortly.",
        headers={"Retry-After": "1"},
        checks={"store": exc.reason},
    )


def storage_fault(exc: StorageFault) -> ProblemError:
    """507 when the storage is full, 503 when it failed (I/O, damage): neither is a blip to
    retry at once, so neither says "retry shortly" nor sends Retry-After."""
    log.error("session store storage fault: %s", exc.reason)
    if exc.kind == "full":
        return PROBLEM_TYPES["storage-full"].error(
            f"The session store has no room for this write ({exc.reason}). Nothing was "
            "applied; the session is as it was. Retry once an operator has freed space, "
            "or delete sessions you no longer need.",
            reason=exc.reason,
        )
    return PROBLEM_TYPES["storage-failed"].error(
        f"The session store's storage failed ({exc.reason}). Nothing was applied; the "
        "storage needs an operator's repair.",
        reason=exc.reason,
    )


def timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def public(meta: SessionMeta, ttl_seconds: float) -> dict[str, Any]:
    """GET /v1/sessions/{id}: everything but the tensors' values. Linear in the number of
    arrays (a few passes over them), so a session of many parameters is cheap to describe."""
    grads = meta.infos(GRAD)
    slots = meta.slots_by_parameter()
    program = {k: v for k, v in meta.program.items() if k != "loss" and v is not None}
    return {
        "id": meta.id,
        "version": meta.version,
        "step_count": meta.step_count,
        "created_at": timestamp(meta.created_at),
        "updated_at": timestamp(meta.updated_at),
        "last_used_at": timestamp(meta.last_used_at),
        "expires_at": timestamp(meta.last_used_at + ttl_seconds),
        "stored_bytes": meta.stored_bytes,
        "parameters": {
            name: {
                "shape": list(info.shape),
                "dtype": info.dtype,
                "requires_grad": meta.requires_grad.get(name, True),
                "grad": name in grads,
                "optimizer_state": slots.get(name, []),
            }
            for name, info in sorted(meta.infos(PARAM).items())
        },
        "buffers": {
            name: {"shape": list(info.shape), "dtype": info.dtype}
            for name, info in sorted(meta.infos(BUFFER).items())
        },
        "optimizer": meta.optimizer,
        "program": program,
        "loss": meta.program.get("loss"),
    }


@dataclass
class Call:
    """One request to a session, as the protocol layer needs it."""

    store: SessionStore
    session_id: str
    token: str
    method: str = "GET"
    path: str = ""
    body: bytes = b""
    safetensors: bool = False  # the body is a safetensors file (service.wire.safetensors), not JSON
    if_match: str | None = None
    key: str | None = None
    seconds: float | None = None  # the time limit of the call's computation (engine.deadline)

    def read(self, use: Callable[[SessionRecord], T]) -> T:
        """`use(the whole session)`, if the token opens it; marks it used. `use` runs under
        the session's lock: the arrays are the ones a step in another thread updates."""
        try:
            with self.store.lock(self.session_id), deadline(self.seconds):  # not the wait
                record = self.store.get(self.session_id)
                authorize(record, self.token, self.session_id)
                assert record is not None
                self._touch(record)
                return use(record)
        except StoreUnavailable as exc:
            raise unavailable(exc) from exc

    def read_meta(self) -> SessionMeta:
        try:
            with deadline(self.seconds):  # reading may replay the journal
                meta = self.store.get_meta(self.session_id)
            meta = authorize(meta, self.token, self.session_id)
            self._touch(meta)
        except StoreUnavailable as exc:
            raise unavailable(exc) from exc
        return meta

    def _touch(self, session: SessionMeta) -> None:
        """Restart the idle time; a read soon after the last use skips the write."""
        interval = min(TOUCH_SECONDS, self.store.limits.session_ttl_seconds / 4)
        if self.store.clock() - session.last_used_at > interval:
            try:
                self.store.touch(self.session_id)
            except StorageFault as exc:  # a read still answers from a full store
                log.warning("session %s not marked used: %s", self.session_id, exc.reason)

    def delete(self) -> None:
        try:
            meta = self.store.get_meta(self.session_id)
            authorize(meta, self.token, self.session_id)
            self._check_if_match(meta.version)  # type: ignore[union-attr]
            if not self.store.delete(self.session_id):
                raise not_found(self.session_id)
        except StoreUnavailable as exc:
            raise unavailable(exc) from exc

    def _check_if_match(self, version: int) -> None:
        if self.if_match is not None and not matches(self.if_match, version):
            raise precondition_failed(self.if_match, version)

    # -- idempotency --

    def _fingerprint(self) -> str:
        return request_fingerprint(self.method, self.path, self.body)

    def _replay(self, stored: StoredResponse) -> Response:
        if stored.fingerprint != self._fingerprint():
            raise PROBLEM_TYPES["idempotency-key-reused"].error(
                f"Idempotency-Key {stored.key!r} was used for a different request (another "
                "method, path or body); use a new key for a new request.",
                key=stored.key,
            )
        headers = dict(stored.headers)
        headers[REPLAYED] = "true"
        media = headers.pop("content-type", None)
        return Response(stored.body, stored.status, headers=headers, media_type=media)

    # -- the commit --

    def mutate(
        self, compute: Callable[[SessionRecord], Outcome], replay: bytes | None = None
    ) -> Response:
        """Read, compute, commit with compare-and-set; the answer (or its replay). `replay`
        is the request as a journal entry, when the call can be computed again from it."""
        try:
            with self.store.lock(self.session_id), deadline(self.seconds):  # not the wait
                return self._mutate(compute, replay)
        except StoreUnavailable as exc:
            raise unavailable(exc) from exc

    def _mutate(
        self, compute: Callable[[SessionRecord], Outcome], replay: bytes | None
    ) -> Response:
        for _ in range(MAX_ATTEMPTS):
            record = self.store.get(self.session_id)
            authorize(record, self.token, self.session_id)
            assert record is not None
            if self.key is not None:
                stored = self.store.get_response(self.session_id, self.key)
                if stored is not None:
                    return self._replay(stored)
            self._check_if_match(record.version)
            started = time.perf_counter()
            try:
                outcome = compute(record)
            except BaseException:
                self.store.forget(self.session_id)  # it may have updated the kept arrays in place
                raise
            if outcome.changes is None:  # nothing to change (a dry run)
                self.store.forget(self.session_id)  # which updated the kept arrays in place, too
                self._touch(record)
                return self._answer(outcome, record.version)
            outcome.changes.replay = replay
            outcome.changes.seconds = time.perf_counter() - started
            version = record.version + 1
            response = self._answer(outcome, version)
            if self.key is not None:
                outcome.changes.response = StoredResponse(
                    key=self.key,
                    fingerprint=self._fingerprint(),
                    status=response.status_code,
                    headers=[(k, v) for k, v in response.headers.items() if k != "content-length"],
                    body=bytes(response.body),
                )
            try:
                # `base`: a store keeping sessions in memory keeps what `record` became
                self.store.commit(self.session_id, record.version, outcome.changes, base=record)
            except VersionConflict as exc:
                if self.if_match is not None:
                    raise precondition_failed(self.if_match, exc.actual) from None
                continue  # someone else committed first: recompute on their version
            except KeyReused as exc:
                return self._replay(exc.response)
            except SessionNotFound:
                raise not_found(self.session_id) from None
            except QuotaExceeded as exc:
                raise quota(exc) from None
            return response
        raise PROBLEM_TYPES["session-conflict"].error(
            f"The session changed {MAX_ATTEMPTS} times while this call was computed; retry, "
            "or send If-Match to be told at once.",
            headers={"Retry-After": "1"},
        )

    def _answer(self, outcome: Outcome, version: int) -> Response:
        headers = {"ETag": etag(version), **outcome.headers}
        if outcome.content is None:
            return Response(status_code=outcome.status, headers=headers)
        body = jsonio.dumps({**outcome.content, "version": version})
        return Response(body, outcome.status, headers=headers, media_type=JSON)
