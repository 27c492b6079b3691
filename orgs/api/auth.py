"""Bearer tokens: django-rest-knox's tokens (`Authorization: Bearer <token>`, knox's
`AUTH_HEADER_PREFIX`); knox stores only a SHA-512 digest, and deleting the row revokes it.

A request reads only the token it presents. Knox's own check also reads every other token of the
user, to delete the expired ones: a user who signed in a thousand times made each request load a
thousand rows (a third of a PATCH's CPU at 200 tokens). Expired tokens are purged daily instead
(`orgs.purge_expired_tokens`), and an expired token presented is deleted and refused at once.

With a well-formed `X-Org-Id`, the verified user's membership in that org is then read by one
query, in the same round trip that claims the org for row-level security
(`db_security.claim_org`); `crm.api.context.resolve_membership` uses the answer. Nothing is
cached across requests: a revoked token or a removed membership fails at once.
"""

from __future__ import annotations

import functools
from hmac import compare_digest

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from crm import db_security
from crm.api.context import VERIFIED_ORG_ATTR, api_change_context, org_id_or_none
from orgs.models import Membership, Organization


class BearerTokenAuthentication(TokenAuthentication):
    """Knox's token check (the rows of the token's public prefix, constant-time digest compare,
    expired refused and deleted, inactive users refused, AUTO_REFRESH honoured), reading no other
    token; then the caller's membership in the org `X-Org-Id` claims."""

    def authenticate_credentials(self, token: bytes):
        # Knox would answer these with a 500 (UnicodeDecodeError; PostgreSQL refuses NUL in text).
        if b"\x00" in token or not _is_utf8(token):
            raise exceptions.AuthenticationFailed("Invalid token.")
        presented = token.decode()
        for auth_token in tokens_with_user(presented[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                auth_token.delete()
                token_expired.send(sender=type(self), username=auth_token.user.get_username(), source="auth_token")
                continue
            try:
                digest = hash_token(presented)
            except (TypeError, ValueError):  # not hex: cannot be one of ours
                break
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed("Invalid token.")

    def authenticate(self, request):
        answer = super().authenticate(request)
        if answer is None:
            refuse_token_keyword(request)
            return None  # not a bearer token: possibly for another authentication class
        org_id = org_id_or_none(request)
        if org_id is not None:
            user, token = answer
            setattr(request, VERIFIED_ORG_ATTR, (org_id, claimed_membership(org_id, user, token.token_key)))
        return answer


def refuse_token_keyword(request) -> None:
    """`Authorization: Token …` is DRF's own keyword, the one a newcomer tries first: say what to send
    rather than "credentials were not provided" (other schemes stay free for other authentications)."""
    scheme = get_authorization_header(request).split(maxsplit=1)[:1]
    if scheme and scheme[0].lower() == b"token":
        raise exceptions.AuthenticationFailed(
            "Tokens go with the Bearer scheme here: send `Authorization: Bearer <token>`, not `Token <token>`."
        )


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def claimed_membership(org_id: int, user, token_key: str | None = None) -> Membership | None:
    """`user`'s membership in `org_id` (None if there is none), read with the org claimed for
    row-level security (and the history's actor set) in the same round trip. Fail closed: the claim
    stays only when the membership is found; that lookup is the only query run under an unverified claim."""
    sql, readers = _membership_lookup()
    found = None
    try:
        rows = db_security.claim_org(org_id, sql, [org_id, user.pk], also=api_change_context(user.pk, token_key))
        if rows:
            found, org = _instances(readers, rows[0])
            found.org, found.user = org, user
    finally:
        if found is None:
            db_security.drop_org_claim()
    return found


def tokens_with_user(token_key: str) -> list:
    """The tokens of this public prefix, each with its user: knox's
    `filter(token_key=…).select_related("user")`, as one statement prepared once per connection
    (built by the ORM on every request, it was a tenth of `GET /contacts/{id}`'s CPU)."""
    sql, readers = _token_lookup()
    with connection.prepared_cursor() as cursor:
        cursor.execute(sql, [token_key])
        rows = cursor.fetchall()
    tokens = []
    for row in rows:
        token, user = _instances(readers, row)
        token.user = user
        tokens.append(token)
    return tokens


@functools.cache
def _token_lookup() -> tuple[str, list]:
    token, user = get_token_model(), get_user_model()
    return _joined_select(
        [(token, "t"), (user, "u")],
        f"FROM {token._meta.db_table} t JOIN {user._meta.db_table} u ON u.id = t.user_id WHERE t.token_key = %s",
    )


@functools.cache
def _membership_lookup() -> tuple[str, list]:
    return _joined_select(
        [(Membership, "m"), (Organization, "o")],
        f"FROM {Membership._meta.db_table} m JOIN {Organization._meta.db_table} o ON o.id = m.org_id"
        " WHERE m.org_id = %s AND m.user_id = %s",
    )


def _joined_select(models: list, tail: str) -> tuple[str, list]:
    """SQL selecting every column of each (model, alias) and `tail`, and how to read its rows
    (Model.from_db, as Django's documentation of it reads `_meta.concrete_fields`)."""
    readers, columns = [], []
    for model, alias in models:
        fields = model._meta.concrete_fields
        readers.append((model, [f.attname for f in fields]))
        columns += [f'{alias}."{f.column}"' for f in fields]
    return f"SELECT {', '.join(columns)} {tail}", readers


def _instances(readers: list, row: tuple) -> list:
    out, start = [], 0
    for model, names in readers:
        out.append(model.from_db(connection.alias, names, row[start : start + len(names)]))
        start += len(names)
    return out
