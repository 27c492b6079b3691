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

import contextlib
import hashlib
import math
import threading
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from customization.text import fold

ENVIRON_KEY = "crm.rate_limits"
DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """DRF's rate notation: `1200/min` → (1200, 60)."""
    count, period = rate.split("/")
    return int(count), DURATIONS[period[0]]


class TokenRateThrottle(BaseThrottle):
    """A fixed window per bucket and caller, counted with the cache's atomic `incr` (concurrent
    requests of one token all count, on every worker with Redis). The window opens at the
    caller's first request and lasts the rate's period; requests refused count too."""

    scope = "api"

    def allow_request(self, request, view):
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        key = self.get_cache_key(request, view) if rate is not None else None
        if key is None:
            return True
        limit, window = parse_rate(rate)
        now = time.time()
        opened = cache.get_or_set(f"{key}:opened", now, window)  # the window's start, kept with it
        used = self._count(key, window)
        self.reset = max(1, math.ceil(opened + window - now))
        request.META.setdefault(ENVIRON_KEY, []).append((self.scope, limit, window, max(limit - used, 0), self.reset))
        return used <= limit

    @staticmethod
    def _count(key: str, window: int) -> int:
        cache.add(key, 0, window)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr: a new window
            cache.set(key, 1, window)
            return 1

    def wait(self):
        return self.reset

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        if token is not None and getattr(token, "token_key", None):
            ident = f"token:{token.token_key}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return f"throttle_{self.scope}_{ident}"


class SearchRateThrottle(TokenRateThrottle):
    scope = "search"


class ImportRateThrottle(TokenRateThrottle):
    scope = "import"


class AuthRateThrottle(TokenRateThrottle):
    """Password attempts per client address (the caller has no token yet). The address is the
    peer's unless settings NUM_PROXIES says how many proxies in front append X-Forwarded-For."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return f"throttle_{self.scope}_{self.get_ident(request)}"


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
        return f"throttle_{self.scope}_{ident}"


class ServerBusy(exceptions.APIException):
    """503 with Retry-After: this server process runs as many of this kind of request as it may."""

    status_code = 503
    default_code = "server_busy"

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after


class ProcessSlots:
    """At most `settings.<setting>` requests of one kind at once in this process, so they cannot
    take every thread of a gunicorn worker and leave the other requests waiting behind them."""

    def __init__(self, setting: str, busy_detail: str, retry_after: int = 5):
        self.setting, self.busy_detail, self.retry_after = setting, busy_detail, retry_after
        self._lock = threading.Lock()
        self._taken = 0

    @contextlib.contextmanager
    def take(self):
        with self._lock:
            if self._taken >= getattr(settings, self.setting):
                raise ServerBusy(self.busy_detail, self.retry_after)
            self._taken += 1
        try:
            yield
        finally:
            with self._lock:
                self._taken -= 1


def uncounted_buckets(request) -> list[tuple]:
    """For an API answer given before any bucket counted the request (no or a bad token, no org,
    a body over its cap, an unknown parameter or route): the `api` bucket it falls in, read without
    counting, so that every answer says where its caller stands. The bucket is the bearer token's
    (by its public prefix, knox's `token_key`), else the client address's, as TokenRateThrottle keys them."""
    rate = api_settings.DEFAULT_THROTTLE_RATES.get("api")
    if rate is None:
        return []
    limit, window = parse_rate(rate)
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        ident = f"token:{token.strip()[:15]}"
    else:
        ident = f"ip:{BaseThrottle().get_ident(request)}"
    key = f"throttle_api_{ident}"
    opened, used = cache.get(f"{key}:opened"), cache.get(key, 0)
    reset = max(1, math.ceil(opened + window - time.time())) if opened is not None else window
    return [("api", limit, window, max(limit - used, 0), reset)]


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
