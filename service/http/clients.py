"""Who is calling, settled before anything else of a /v1 request is read: its API key (when
the server has a keys file, AUTOGRAD_API_KEYS_FILE) or else its address, which becomes the
owner its sessions count against; then its request rate. A pure ASGI middleware doing a few
dictionary lookups per request, since it runs on every call, the cheapest included.

Which header holds the API key: `X-API-Key` on any call. A session's own calls
(`/v1/sessions/{id}...`) send the session's token in `Authorization: Bearer`, so their key
goes in X-API-Key; the other calls may send the key as `Authorization: Bearer <key>`.

`/livez`, `/readyz`, `/metrics`, `/docs`, `/openapi.json` and `/problems` stay open: probes,
scrapers and readers of the documentation hold no key.
"""

from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.clients.keyring import KeyRing
from service.clients.keys import ApiKey
from service.clients.ratelimit import Buckets, Rate
from service.http.problems import problem_response
from service.problems import PROBLEM_TYPES, ProblemError
from service.settings import Settings
from service.store import ClientCaps

OWNER = "autograd.owner"  # scope key: the owner of the sessions this request creates
_API_KEY, _AUTHORIZATION = b"x-api-key", b"authorization"
_SESSION_CALLS = "/v1/sessions/"  # followed by an id: the session's token is in Authorization


def owner_of(request: Request) -> str:
    """The client a session made by this request belongs to ("" outside /v1)."""
    return request.scope.get(OWNER, "")


def caps_of(keys: KeyRing | None, settings: Settings) -> Callable[[str], ClientCaps | None]:
    """An owner's own caps for the store: its key's, each left out taking the setting's; an
    address (or a key since removed) has the settings' (None)."""

    def caps(owner: str) -> ClientCaps | None:
        entry = keys.by_owner(owner) if keys is not None else None
        if entry is None:
            return None
        return ClientCaps(
            settings.max_client_sessions if entry.max_sessions is None else entry.max_sessions,
            settings.max_client_bytes if entry.max_bytes is None else entry.max_bytes,
        )

    return caps


def _missing(session_call: bool) -> ProblemError:
    where = (
        "`X-API-Key: <key>` (a session's calls keep `Authorization: Bearer <session token>`)"
        if session_call
        else "`X-API-Key: <key>` or `Authorization: Bearer <key>`"
    )
    return PROBLEM_TYPES["api-key-required"].error(
        f"This server requires an API key on /v1 calls: send {where}.",
        headers={"WWW-Authenticate": 'Bearer realm="api"'},
    )


def _unknown() -> ProblemError:
    # 401, not 403 (RFC 9110 §15.5.2, §15.5.4): an unknown key is no credentials at all; 403
    # would say "we know who you are, and no". RFC 6750 §3.1 names the error invalid_token.
    return PROBLEM_TYPES["api-key-invalid"].error(
        "The API key sent is not one this server knows.",
        headers={"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'},
    )


def _bearer(value: bytes) -> str | None:
    scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


class ClientsMiddleware:
    def __init__(
        self, app: ASGIApp, settings: Settings, keys: KeyRing | None, buckets: Buckets | None = None
    ) -> None:
        self.app, self.keys = app, keys
        self.rate = Rate.of(settings.rate_limit, settings.rate_burst)
        self.buckets = buckets if buckets is not None else Buckets()
        self._rates: dict[ApiKey, Rate | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        try:
            owner, rate = self._identify(scope, path)
        except ProblemError as refusal:
            await problem_response(refusal, path)(scope, receive, send)
            return
        scope[OWNER] = owner
        if rate is None:  # no limit: nothing to count or to say
            await self.app(scope, receive, send)
            return
        verdict = self.buckets.take(owner, rate)
        if not verdict.allowed:
            refusal = PROBLEM_TYPES["rate-limited"].error(
                f"More than {rate.burst} requests at once, or over {rate.per_second:g} a "
                f"second on average; retry in {verdict.retry_after} s.",
                headers={"Retry-After": str(verdict.retry_after),
                         "RateLimit-Policy": rate.policy, "RateLimit": verdict.field()},
            )  # fmt: skip
            await problem_response(refusal, path)(scope, receive, send)
            return
        extra = ((b"ratelimit-policy", rate.policy.encode()),
                 (b"ratelimit", verdict.field().encode()))  # fmt: skip

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_fields)

    def _identify(self, scope: Scope, path: str) -> tuple[str, Rate | None]:
        """The request's owner and its rate; a ProblemError (401) without a usable key."""
        if self.keys is None:
            client = scope.get("client")  # the peer, or X-Forwarded-For's from a trusted proxy
            return f"addr:{client[0] if client else 'unknown'}", self.rate
        session_call = path.startswith(_SESSION_CALLS) and len(path) > len(_SESSION_CALLS)
        key = None
        for name, value in scope["headers"]:
            if name == _API_KEY:
                key = value.decode("latin-1").strip()
                break
            if name == _AUTHORIZATION and not session_call:
                key = _bearer(value)
        if not key:
            raise _missing(session_call)
        entry = self.keys.lookup(key)
        if entry is None:
            raise _unknown()
        return entry.owner, self._rate_of(entry)

    def _rate_of(self, entry: ApiKey) -> Rate | None:
        """A key's own rate (and burst), else the settings'; worked out once per key."""
        rate = self._rates.get(entry)
        if rate is None and entry not in self._rates:
            if entry.rate is not None:
                rate = Rate.of(entry.rate, entry.burst or 0)
            elif self.rate is not None:
                rate = Rate.of(self.rate.per_second, entry.burst or self.rate.burst)
            if len(self._rates) >= 10_000:  # keys come and go with edits of the file
                self._rates.clear()
            self._rates[entry] = rate
        return rate
