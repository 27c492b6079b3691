"""Bootstrap operations shared by the management commands and the demo set-up."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from knox.models import AuthToken

from crm.db_security import rls_bypass
from orgs.models import Membership, Organization


def get_or_create_user(email: str, password: str | None = None):
    User = get_user_model()
    email = email.strip().lower()
    user, _ = User.objects.get_or_create(username=email, defaults={"email": email})
    if password:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


def issue_token(user) -> str:
    _, token = AuthToken.objects.create(user=user)
    return token


@rls_bypass()
def create_org(name: str, owner_email: str, password: str | None = None, **org_fields) -> dict:
    org = Organization(name=name, **org_fields)
    org.full_clean()
    org.save()
    user = get_or_create_user(owner_email, password)
    Membership.objects.create(org=org, user=user, role=Membership.Role.OWNER)
    return {"org_id": org.id, "user_id": user.id, "token": issue_token(user)}


@rls_bypass()
def add_member(org: Organization, email: str, role: str, scope: str, password: str | None = None) -> dict:
    user = get_or_create_user(email, password)
    Membership.objects.update_or_create(org=org, user=user, defaults={"role": role, "data_scope": scope})
    return {"user_id": user.id, "token": issue_token(user)}
