"""`Idempotency-Key` for POST creates and imports (DESIGN §3).

A retry with the same key and the same body replays the first answer; the same key with a
different body is a 422; a key whose first request is still running is a 409. Keys are
scoped per org and user and kept 24 hours.
"""

from __future__ import annotations

import functools
import hashlib
import re
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from crm.api.exceptions import MalformedRequest
from crm.api.middleware import BODY_DIGEST_KEY
from crm.errors import Conflict, FieldError, InvalidInput
from crm.models import IdempotencyRecord

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)
REPLAY_HEADER = "Idempotent-Replayed"
# Visible ASCII, inner spaces allowed, 1–255 characters (published as the header's schema pattern).
KEY_PATTERN = r"^[!-~](?:[ -~]{0,253}[!-~])?$"


def _request_hash(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.get_full_path().encode())
    digest.update(b"\0")
    digest.update((request.content_type or "").encode())
    digest.update(b"\0")
    # A spooled body (crm.api.middleware) was hashed while it was spooled: not read into memory here.
    digest.update(request.META.get(BODY_DIGEST_KEY, "").encode() or request.body)
    return digest.hexdigest()


def _storable(value):
    """jsonb holds no NUL and no unpaired surrogate: an answer echoing such input is stored with U+FFFD / '?'."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(item) for item in value]
    return value


def _parse_key(raw: str) -> str:
    key = raw.strip()
    if not re.fullmatch(KEY_PATTERN, key):
        raise MalformedRequest(
            f"{HEADER} must be 1–255 visible ASCII characters.", attr=HEADER, code="malformed_idempotency_key"
        )
    return key


def _claim(membership, key: str, request_hash: str) -> IdempotencyRecord | None:
    """Insert an in-flight record; return the existing one when the key is taken."""
    scope = {"org_id": membership.org_id, "user_id": membership.user_id, "key": key}
    IdempotencyRecord.objects.for_org(membership.org_id).filter(
        **scope, created_at__lt=timezone.now() - RETENTION
    ).delete()
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(**scope, request_hash=request_hash)
        return None
    except IntegrityError:
        return IdempotencyRecord.objects.for_org(membership.org_id).filter(**scope).first()


def idempotent(handler):
    """Decorate a view's POST handler (`create`, `post`) to honour Idempotency-Key."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        raw = request.headers.get(HEADER)
        if raw is None:
            return handler(view, request, *args, **kwargs)
        key = _parse_key(raw)
        membership = request.membership
        request_hash = _request_hash(request)
        existing = _claim(membership, key, request_hash)
        if existing is not None:
            if existing.request_hash != request_hash:
                raise InvalidInput(
                    [
                        FieldError(
                            HEADER, "idempotency_key_reused", "This Idempotency-Key was used with a different request."
                        )
                    ]
                )
            if existing.state == IdempotencyRecord.State.IN_FLIGHT:
                raise Conflict(
                    "A request with this Idempotency-Key is still being processed; retry later.",
                    attr=HEADER,
                    code="idempotency_key_in_flight",
                )
            response = Response(
                existing.response_body,
                status=existing.response_status,
                content_type=existing.response_content_type or None,
            )
            response[REPLAY_HEADER] = "true"
            return response
        scope = IdempotencyRecord.objects.for_org(membership.org_id).filter(user_id=membership.user_id, key=key)
        try:
            response = handler(view, request, *args, **kwargs)
        except Exception:
            scope.delete()  # nothing was answered: let the client retry with the same key
            raise
        if response.status_code >= 500:
            scope.delete()
        else:
            scope.update(
                state=IdempotencyRecord.State.DONE,
                response_status=response.status_code,
                response_body=_storable(response.data),
                response_content_type=getattr(response, "content_type", None) or "",
            )
        return response

    wrapper.idempotent = True
    return wrapper
