"""Bearer tokens: django-rest-knox stores only a SHA-512 digest, and deleting the row revokes it."""

from knox.auth import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """Knox's authentication with `Authorization: Bearer <token>`.

    Knox also sweeps the user's other expired tokens on every request (one more query);
    we only check the presenting token, since tokens are long-lived and revoked explicitly.
    """

    def _cleanup_token(self, auth_token) -> bool:
        from django.utils import timezone

        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False
