from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from crm import db_security
from crm.api.throttling import AccountRateThrottle, AuthRateThrottle
from crm.api.viewsets import OrgScopedViewMixin
from orgs.api.serializers import CurrentOrgSerializer, MeSerializer, TokenRequestSerializer, TokenResponseSerializer
from orgs.services import issue_token


class TokenView(APIView):
    """Exchange email + password for an API token; DELETE revokes the token presented."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle, AccountRateThrottle]
    error_statuses = ("401", "429")

    def get_authenticators(self):
        # POST is anonymous; DELETE must know which token to revoke.
        if getattr(self, "request", None) is not None and self.request.method == "DELETE":
            from orgs.api.auth import BearerTokenAuthentication

            return [BearerTokenAuthentication()]
        return []

    def get_authenticate_header(self, request):
        return "Bearer"  # so a wrong password is a 401, not DRF's fallback 403

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [IsAuthenticated()]
        return [AllowAny()]

    @extend_schema(
        operation_id="auth_token_create",
        auth=[],
        request=TokenRequestSerializer,
        responses={201: TokenResponseSerializer},
        tags=["auth"],
        examples=[
            OpenApiExample(
                "credentials", value={"email": "owner@acme.test", "password": "s3cret-pass"}, request_only=True
            )
        ],
    )
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        return Response({"token": issue_token(user), "user_id": user.id}, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="auth_token_revoke", responses={204: None}, tags=["auth"])
    def delete(self, request):
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    """The caller and their memberships (no org header needed)."""

    @extend_schema(responses=MeSerializer, tags=["auth"])
    def get(self, request):
        db_security.set_request_user(request.user.pk)
        memberships = request.user.memberships.select_related("org").order_by("org_id")
        data = {"id": request.user.id, "email": request.user.email, "memberships": memberships}
        return Response(MeSerializer(data).data)


class CurrentOrgView(OrgScopedViewMixin, APIView):
    """The org named by `X-Org-Id`, with the caller's role and data scope in it."""

    @extend_schema(responses=CurrentOrgSerializer, tags=["auth"])
    def get(self, request):
        membership = request.membership
        return Response(CurrentOrgSerializer(membership.org, context={"membership": membership}).data)
