from django.contrib.auth import authenticate
from rest_framework import serializers

from crm.api.serializer_fields import StrictCharField, StrictEmailField, StrictModelSerializer
from orgs.models import Membership, Organization


class TokenRequestSerializer(serializers.Serializer):
    email = StrictEmailField(max_length=254)
    password = StrictCharField(max_length=256, trim_whitespace=False, style={"input_type": "password"})

    def validate(self, attrs):
        user = authenticate(
            self.context["request"], username=attrs["email"].strip().lower(), password=attrs["password"]
        )
        if user is None:
            from rest_framework.exceptions import AuthenticationFailed

            raise AuthenticationFailed("Email or password is wrong.", code="invalid_credentials")
        attrs["user"] = user
        return attrs


class TokenResponseSerializer(serializers.Serializer):
    token = StrictCharField(help_text="Send as `Authorization: Bearer <token>`. Shown once; stored hashed.")
    user_id = serializers.IntegerField()


class MembershipSummarySerializer(StrictModelSerializer):
    org_id = serializers.IntegerField(source="org.id")
    org_name = StrictCharField(source="org.name")

    class Meta:
        model = Membership
        fields = ["org_id", "org_name", "role", "data_scope"]


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = StrictEmailField()
    memberships = MembershipSummarySerializer(many=True)


class CurrentOrgSerializer(StrictModelSerializer):
    role = serializers.SerializerMethodField()
    data_scope = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "name", "default_region", "timezone", "created_at", "role", "data_scope"]

    def get_role(self, org) -> str:
        return self.context["membership"].role

    def get_data_scope(self, org) -> str:
        return self.context["membership"].data_scope
