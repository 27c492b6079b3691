"""Bearer tokens: django-rest-knox stores only a SHA-512 digest, and deleting the row revokes it.

With a well-formed `X-Org-Id`, the token, its user and the user's membership in that org are
read by one query, in the same round trip that sets the claimed org for row-level security
(`db_security.claim_org`); `crm.api.context.resolve_membership` then uses the verified answer.
Nothing is cached across requests: a revoked token or a removed membership fails at once.
"""

from __future__ import annotations

import binascii
import functools
from hmac import compare_digest

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from crm import db_security
from crm.api.context import VERIFIED_ORG_ATTR, org_id_or_none
from orgs.models import Membership, Organization

INVALID_TOKEN = "Invalid token."


def _columns(model, alias: str) -> tuple[list[str], str]:
    fields = model._meta.concrete_fields
    return [f.attname for f in fields], ", ".join(f'{alias}."{f.column}"' for f in fields)


@functools.cache
def _lookup(with_membership: bool) -> tuple[str, list]:
    """SQL of the token lookup (joined with the membership in the claimed org), and how to read its rows."""
    models = [(get_token_model(), "t"), (get_user_model(), "u")]
    if with_membership:
        models += [(Membership, "m"), (Organization, "o")]
    parts = [(model, *_columns(model, alias)) for model, alias in models]
    token_meta, user_meta = get_token_model()._meta, get_user_model()._meta
    sql = (
        f"SELECT {', '.join(cols for _, _, cols in parts)} FROM {token_meta.db_table} t "
        f'JOIN {user_meta.db_table} u ON u."{user_meta.pk.column}" = t."{token_meta.get_field("user").column}"'
    )
    if with_membership:
        sql += (
            f' LEFT JOIN {Membership._meta.db_table} m ON m.user_id = u."{user_meta.pk.column}" AND m.org_id = %s'
            f" LEFT JOIN {Organization._meta.db_table} o ON o.id = m.org_id"
        )
    sql += " WHERE t.token_key = %s"
    return sql, [(model, names) for model, names, _ in parts]


def _instances(readers: list, row: tuple) -> list:
    out, start = [], 0
    for model, names in readers:
        values = row[start : start + len(names)]
        start += len(names)
        out.append(None if values[0] is None else model.from_db(connection.alias, names, values))
    return out


class BearerTokenAuthentication(TokenAuthentication):
    """Knox's authentication with `Authorization: Bearer <token>`: the same digest check
    (constant-time compare), expiry and active-user rules, in fewer round trips.

    Knox also sweeps the user's other expired tokens on every request (one more query);
    we only check the presenting token, since tokens are long-lived and revoked explicitly.
    """

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.authenticate_header(request).encode().lower():
            return None  # possibly for another backend
        if len(auth) == 1:
            raise exceptions.AuthenticationFailed("Invalid token header. No credentials provided.")
        if len(auth) > 2:
            raise exceptions.AuthenticationFailed("Invalid token header. Token string should not contain spaces.")
        try:
            token = auth[1].decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN) from None
        org_id = org_id_or_none(request)
        sql, readers = _lookup(org_id is not None)
        key = token[: CONSTANTS.TOKEN_KEY_LENGTH]
        if org_id is None:
            with connection.cursor() as cursor:
                cursor.execute(sql, [key])
                rows = cursor.fetchall()
            auth_token, _, expired = self._match(token, readers, rows)
        else:
            rows = db_security.claim_org(org_id, sql, [org_id, key])
            verified = None
            try:
                auth_token, membership, expired = self._match(token, readers, rows)
                if auth_token is not None and not expired:
                    verified = membership
                    setattr(request, VERIFIED_ORG_ATTR, (org_id, membership))
            finally:
                if verified is None:
                    db_security.drop_org_claim()
        for stale in expired:
            stale.delete()
        if auth_token is None:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        if knox_settings.AUTO_REFRESH and auth_token.expiry:
            self.renew_token(auth_token)
        return auth_token.user, auth_token

    def _match(self, token: str, readers: list, rows: list[tuple]):
        """(token whose digest matches or None, its user's membership in the claimed org or None,
        expired tokens to delete). No query: runs while the claimed org is still unverified."""
        expired = []
        for row in rows:
            auth_token, user, *rest = _instances(readers, row)
            auth_token.user = user
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                expired.append(auth_token)
                continue
            try:
                digest = hash_token(token)
            except (TypeError, binascii.Error):
                raise exceptions.AuthenticationFailed(INVALID_TOKEN) from None
            if compare_digest(digest, auth_token.digest):
                self.validate_user(auth_token)  # 401 for an inactive user
                membership = None
                if rest and rest[0] is not None:
                    membership, org = rest
                    membership.org, membership.user = org, user
                return auth_token, membership, expired
        return None, None, expired
