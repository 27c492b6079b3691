"""Rate limits (429 + Retry-After) and the IETF `RateLimit-Policy` / `RateLimit` headers.

Buckets: `api` per token on every endpoint; `search` and `import` per token on top of it for
those endpoints; `auth` per client address and `auth_account` per email for password attempts.
Rates come from settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (env `THROTTLE_RATES`), read
on every check. Counters live in the default cache: Redis when REDIS_URL is set (shared by all
workers), else per-process memory.

Each bucket a request passed through is noted in the WSGI environ (`crm.rate_limits`, an
application key as PEP 3333 allows) and RateLimitHeadersMiddleware writes the headers from it,
on answers and on 429s alike (draft-ietf-httpapi-ratelimit-headers).
"""

import hashlib
import math
from array import array

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from customization.text import fold

ENVIRON_KEY = "crm.rate_limits"


class TokenRateThrottle(SimpleRateThrottle):
    scope = "api"

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def __init__(self):
        # SimpleRateThrottle reads the rate once at construction; ours is per request anyway.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def allow_request(self, request, view):
        """DRF's sliding log of request times, kept as an array of doubles: the cache stores
        it pickled, and a list of a busy token's ~1,000 floats costs ~30 µs a request to pickle
        and unpickle where the array costs ~4 µs."""
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.history = array("d", self.cache.get(self.key, ()))
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        allowed = len(self.history) < self.num_requests
        if allowed:
            self.throttle_success()
        self._note(request, remaining=self.num_requests - len(self.history))
        return allowed

    def _note(self, request, remaining: int) -> None:
        # The seconds until a slot frees: the oldest request in the window leaves it.
        reset = math.ceil(self.history[-1] + self.duration - self.now) if self.history else 0
        request.META.setdefault(ENVIRON_KEY, []).append(
            (self.scope, self.num_requests, int(self.duration), max(remaining, 0), max(reset, 0))
        )

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        if token is not None and getattr(token, "token_key", None):
            ident = f"token:{token.token_key}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class SearchRateThrottle(TokenRateThrottle):
    scope = "search"


class ImportRateThrottle(TokenRateThrottle):
    scope = "import"


class AuthRateThrottle(TokenRateThrottle):
    """Password attempts per client address (the caller has no token yet). The address is the
    peer's unless settings NUM_PROXIES says how many proxies in front append X-Forwarded-For."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AccountRateThrottle(TokenRateThrottle):
    """Password attempts per account, whatever address they come from: the email as the login
    compares it (folded), hashed so the cache holds no addresses."""

    scope = "auth_account"

    def get_cache_key(self, request, view):
        if request.method != "POST":
            return None
        email = request.data.get("email") if isinstance(request.data, dict) else None
        if not isinstance(email, str) or not email.strip():
            return None
        ident = hashlib.sha256(fold(email.strip()).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


def rate_limit_headers(environ) -> dict[str, str]:
    """`RateLimit-Policy: "api";q=1200;w=60` and `RateLimit: "api";r=1199;t=0`, one list item per
    bucket the request passed through (structured-field lists, RFC 9651)."""
    buckets = environ.get(ENVIRON_KEY)
    if not buckets:
        return {}
    return {
        "RateLimit-Policy": ", ".join(f'"{scope}";q={quota};w={window}' for scope, quota, window, _, _ in buckets),
        "RateLimit": ", ".join(f'"{scope}";r={remaining};t={reset}' for scope, _, _, remaining, reset in buckets),
    }
