from rest_framework import serializers

from apps.core.serializers import StrictCharField, StrictSerializer


class UserSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    email = serializers.EmailField(read_only=True)
    name = serializers.CharField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    is_staff = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class UserCreateSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    name = StrictCharField(max_length=255)
    password = StrictCharField(max_length=128, write_only=True, trim_whitespace=False)


class UserUpdateSerializer(StrictSerializer):
    """PUT needs email and name; PATCH any subset (partial=True)."""

    email = serializers.EmailField(max_length=254)
    name = StrictCharField(max_length=255)
    password = StrictCharField(
        max_length=128, write_only=True, required=False, trim_whitespace=False
    )
    current_password = StrictCharField(
        max_length=128,
        write_only=True,
        required=False,
        trim_whitespace=False,
        help_text="Needed to change the email or the password (staff changing "
        "someone else's email leave it out); checked whenever sent.",
    )


class UserDeleteSerializer(StrictSerializer):
    """The optional JSON body of DELETE: the current password."""

    current_password = StrictCharField(
        max_length=128, write_only=True, required=False, trim_whitespace=False
    )


class LoginSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    password = StrictCharField(max_length=128, trim_whitespace=False)


class RefreshSerializer(StrictSerializer):
    refresh = StrictCharField(max_length=4096)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Access token lifetime, seconds")


class JwksSerializer(serializers.Serializer):
    keys = serializers.ListField(child=serializers.DictField())
