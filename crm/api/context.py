"""The org context: `X-Org-Id` resolved once per request into the caller's Membership."""

from __future__ import annotations

from rest_framework.exceptions import PermissionDenied

from crm import db_security
from crm.api.exceptions import MalformedRequest
from history.context import change_context
from orgs.models import Membership

ORG_HEADER = "X-Org-Id"
_META_KEY = "HTTP_X_ORG_ID"
_NOT_A_MEMBER = "You are not a member of this organization, or it does not exist."
# Set by the bearer authentication (orgs.api.auth), which reads the membership with the token:
# (org id, the caller's Membership in it or None), both verified in this request.
VERIFIED_ORG_ATTR = "_verified_org_membership"


def parse_org_id(raw: str | None) -> int:
    if raw is None or not raw.strip():
        raise MalformedRequest(f"The {ORG_HEADER} header is required.", attr=ORG_HEADER, code="missing_org_header")
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise MalformedRequest(
            f"{ORG_HEADER} must be a positive integer org id.", attr=ORG_HEADER, code="malformed_org_header"
        )
    return int(raw)


def org_id_or_none(request) -> int | None:
    """The org id named by the header, or None when it is absent or malformed (answered later)."""
    try:
        return parse_org_id(request.META.get(_META_KEY))
    except MalformedRequest:
        return None


def api_change_context(user_id: int, token_key: str | None) -> list[tuple[str, str]]:
    """The history's context of an API request (history.context): its caller and their token's
    public prefix, set in the round trip that claims the org."""
    return change_context(source="api", user_id=user_id, token=token_key)


def resolve_membership(request) -> Membership:
    """The caller's membership in the org named by the header (cached on the request).

    An unknown org and an org the caller does not belong to get the same 403,
    so org ids cannot be probed.
    """
    cached = getattr(request, "_membership", None)
    if cached is not None:
        return cached
    org_id = parse_org_id(request.META.get(_META_KEY))
    verified = getattr(request, VERIFIED_ORG_ATTR, None)
    if verified is not None and verified[0] == org_id:
        membership = verified[1]
    else:
        token_key = getattr(request.auth, "token_key", None)  # a session has no token
        db_security.set_request_identity(request.user.pk, org_id, also=api_change_context(request.user.pk, token_key))
        membership = (
            Membership.objects.select_related("org", "user").filter(org_id=org_id, user_id=request.user.pk).first()
        )
    if membership is None:
        raise PermissionDenied(_NOT_A_MEMBER, code="not_a_member")
    request._membership = membership
    return membership
