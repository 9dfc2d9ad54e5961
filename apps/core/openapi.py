"""Shared OpenAPI pieces: problem responses for drf-spectacular."""

from functools import cache

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from apps.core.serializers import ProblemSerializer

_DESCRIPTIONS = {
    400: "Invalid input (problem+json, `errors` names the fields)",
    401: "Missing, invalid, expired or revoked credentials",
    403: "Authenticated but not allowed",
    404: "No such resource (or not visible to the caller)",
    409: "Conflict with the current state",
    412: "The resource changed since the caller read it",
    428: "A conditional header is required",
    429: "Rate limited",
}


def problems(*statuses: int) -> dict[int, OpenApiResponse]:
    """Problem-details responses for ``extend_schema(responses=...)``."""
    return {
        status: OpenApiResponse(ProblemSerializer, description=_DESCRIPTIONS[status])
        for status in statuses
    }


@cache
def paginated(
    item_serializer: type[serializers.Serializer], *, capped: bool = False
) -> type:
    """The documented shape of a page (PageNumberPagination) of items;
    ``capped``: with ``count_capped`` (counts stop at a cap)."""
    name = item_serializer.__name__.removesuffix("Serializer")
    fields = {
        "count": serializers.IntegerField(
            help_text="Matches; exact unless count_capped." if capped else ""
        ),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item_serializer(many=True),
    }
    if capped:
        fields["count_capped"] = serializers.BooleanField(
            help_text="True when more than `count` match: counting stops at "
            "1,000 (or at the end of the page asked for), and search answers "
            "at most 1,000."
        )
    return type(f"Paginated{name}List", (serializers.Serializer,), fields)
