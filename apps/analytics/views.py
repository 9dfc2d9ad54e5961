from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser

from apps.analytics import selectors
from apps.core.openapi import paginated, problems
from apps.core.pagination import PageNumberPagination
from apps.core.serializers import PageQuerySerializer
from apps.core.views import ApiView


class SalesQuerySerializer(PageQuerySerializer):
    group_by = serializers.ChoiceField(choices=sorted(selectors.GROUPINGS))
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    page = serializers.IntegerField(required=False, min_value=1, max_value=100_000)

    def validate(self, attrs):
        start, end = attrs.get("date_from"), attrs.get("date_to")
        if start and end and start > end:
            raise serializers.ValidationError(
                {"date_to": ["Must not be before date_from."]}
            )
        return attrs


class SalesRowSerializer(serializers.Serializer):
    day = serializers.DateField(required=False)
    product_id = serializers.CharField(required=False)
    product_name = serializers.CharField(required=False)
    category = serializers.CharField(required=False)
    orders = serializers.IntegerField()
    units = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)


class SalesReportView(ApiView):
    """Sales of confirmed orders, by day, product or category (staff)."""

    permission_classes = [IsAdminUser]
    query_methods = frozenset({"get"})

    @extend_schema(
        operation_id="analytics_sales",
        summary="Sales of confirmed orders by day, product or category (staff)",
        parameters=[SalesQuerySerializer],
        responses={200: paginated(SalesRowSerializer), **problems(400, 401, 403)},
    )
    def get(self, request):
        query = SalesQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        values = query.validated_data
        rows = selectors.sales_report(
            group_by=values["group_by"],
            date_from=values.get("date_from"),
            date_to=values.get("date_to"),
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(
            SalesRowSerializer(page, many=True).data
        )
