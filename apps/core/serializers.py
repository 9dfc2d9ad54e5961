from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """A serializer that rejects fields it does not know or may not set.

    DRF silently drops unknown and read-only input fields; a client that
    misspells a field (or tries to set ``is_staff``) should hear about it.
    """

    def to_internal_value(self, data):
        unknown = {}
        if isinstance(data, dict):
            writable = {
                name for name, field in self.fields.items() if not field.read_only
            }
            unknown = {
                name: ["Unknown field, or one that cannot be set."]
                for name in sorted(set(data) - writable)
            }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            # Report the unknown fields together with every other error.
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **unknown}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class ProblemErrorSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    detail = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, as documented in the OpenAPI schema."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    instance = serializers.CharField(required=False)
    request_id = serializers.CharField(required=False)
    errors = ProblemErrorSerializer(many=True, required=False)


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, booleans and other non-strings."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class PageQuerySerializer(StrictSerializer):
    """The query parameters of a paginated list (PageNumberPagination);
    a list with filters extends it."""

    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, help_text="1 to 100")
