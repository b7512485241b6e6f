"""Media types (RFC 9110 §8.3, §12.5.1): the one parser of a request's `Content-Type`, and
content negotiation (which of the media types an operation offers `Accept` prefers)."""

from functools import lru_cache

from service.problems import PROBLEM_TYPES
from service.wire.safetensors import MEDIA

JSON = "application/json"
OCTET_STREAM = MEDIA  # a safetensors file


@lru_cache(maxsize=64)
def media_type(content_type: str | None) -> str | None:
    """`type/subtype` of a Content-Type header, lowercased, its parameters dropped; "" when
    it is not of that form, None without one. (What `email.message.Message` reads, which
    says text/plain for a malformed one: neither is a type any route takes.)"""
    if content_type is None:
        return None
    media = content_type.partition(";")[0].strip().lower()
    return media if media.count("/") == 1 else ""


def is_json(content_type: str | None) -> bool:
    """application/json, or any application/<name>+json (RFC 6839)."""
    kind, _, sub = (media_type(content_type) or "").partition("/")
    return kind == "application" and (sub == "json" or sub.endswith("+json"))


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    ranges = []
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        if "/" not in media:
            continue
        kind, _, sub = media.lower().partition("/")
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranges.append((kind.strip(), sub.strip(), q))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, str, float]]) -> float:
    kind, _, sub = offer.partition("/")
    best, specificity = 0.0, -1
    for r_kind, r_sub, q in ranges:
        if (r_kind, r_sub) == (kind, sub):
            level = 2
        elif r_kind == kind and r_sub == "*":
            level = 1
        elif (r_kind, r_sub) == ("*", "*"):
            level = 0
        else:
            continue
        if level > specificity:  # the most specific range decides
            best, specificity = q, level
    return best


def negotiate(accept: str | None, offers: list[str]) -> str:
    """The offer the client prefers (ties go to the earlier offer; no header takes the first),
    or a 406 problem listing the offers."""
    if not accept or not accept.strip():
        return offers[0]
    ranges = _ranges(accept)
    if not ranges:
        return offers[0]
    scored = [(_quality(offer, ranges), -i, offer) for i, offer in enumerate(offers)]
    q, _, offer = max(scored)
    if q <= 0:
        raise PROBLEM_TYPES["not-acceptable"].error(
            f"Accept: {accept[:200]} matches none of {', '.join(offers)}.", available=offers
        )
    return offer
