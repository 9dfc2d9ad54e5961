from django.urls import reverse
from django.utils.http import parse_etags
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response

from apps.core.openapi import paginated, problems
from apps.core.pagination import PageNumberPagination
from apps.core.views import ApiView
from apps.products import search, selectors, services
from apps.products.models import ATTRIBUTE_NAME, ATTRIBUTE_VALUE_MAX_LENGTH
from apps.products.selectors import ProductFilters
from apps.products.serializers import (
    ProductQuerySerializer,
    ProductSerializer,
    ProductWriteSerializer,
    SearchQuerySerializer,
    StockAdjustmentSerializer,
    product_representation,
)

ATTRIBUTE_PREFIX = "attr."
MAX_ATTRIBUTE_FILTERS = 10


class ReadOrStaffWrite(BasePermission):
    """Anyone reads the catalog; only staff change it."""

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or _is_staff(request)


def _is_staff(request) -> bool:
    user = request.user
    return bool(user and user.is_authenticated and user.is_staff)


def _etag(product) -> str:
    return f'"v{product.revision}"'


def _expected_revisions(request) -> frozenset[str] | None:
    """The revisions If-Match names (the write goes ahead if the product is
    at one of them); None when there is no If-Match or it is ``*``.

    If-Match compares strongly (RFC 9110 13.1.1): a weak tag, or one that is
    no product ETag, names no revision, and an If-Match naming none fails.
    """
    header = request.headers.get("If-Match")
    if header is None:
        return None
    tags = parse_etags(header)
    if tags == ["*"]:
        return None
    return frozenset(
        tag[2:-1] for tag in tags if tag.startswith('"v') and tag.endswith('"')
    )


def _actor(request) -> dict[str, str]:
    return {"actor_id": str(request.user.id), "actor_email": request.user.email}


def _with_etag(response: Response, product) -> Response:
    response["ETag"] = _etag(product)
    return response


def _parse_query(request, serializer_class):
    """Validated query parameters; unknown ones are a 400, not ignored."""
    params = request.query_params
    errors = {}
    attributes = {}
    for key in params:
        if key.startswith(ATTRIBUTE_PREFIX):
            name = key[len(ATTRIBUTE_PREFIX) :]
            value = params[key]
            if not ATTRIBUTE_NAME.match(name):
                errors[key] = ["Attribute names are a letter then letters, digits, _."]
            elif len(value) > ATTRIBUTE_VALUE_MAX_LENGTH or "\x00" in value:
                errors[key] = [
                    f"At most {ATTRIBUTE_VALUE_MAX_LENGTH} characters, no null "
                    "characters."
                ]
            else:
                attributes[name] = value
    if len(attributes) > MAX_ATTRIBUTE_FILTERS:
        errors["attr"] = [f"At most {MAX_ATTRIBUTE_FILTERS} attribute filters."]
    if errors:
        raise ValidationError(errors)
    # Everything but attr.*; the strict serializer rejects unknown names.
    data = {
        key: params.getlist(key) if key == "tag" else params[key]
        for key in params
        if not key.startswith(ATTRIBUTE_PREFIX)
    }
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    values = serializer.validated_data
    if values.get("archived") and not _is_staff(request):
        raise ValidationError({"archived": ["Only staff may list archived products."]})
    filters = ProductFilters(
        category=values.get("category"),
        tags=tuple(values.get("tag", ())),
        min_price=values.get("min_price"),
        max_price=values.get("max_price"),
        in_stock=values.get("in_stock"),
        attributes=attributes,
        include_archived=values.get("archived", False),
    )
    return filters, values


# The query serializer's fields, and the attr.* family no serializer holds.
_ATTRIBUTE_PARAMETER = OpenApiParameter(
    "attr.<name>", str, description="Attribute equality, e.g. attr.colour=red"
)
_IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="The product's ETag as read: 412 if it changed since",
)


def _page(request, view, items, load=None) -> Response:
    """A page of products; ``load`` turns a page of ``items`` (ids, say)
    into products."""
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(items, request, view=view)
    products = load(page) if load else page
    return paginator.get_paginated_response(
        [product_representation(p) for p in products]
    )


class ProductView(ApiView):
    """Anyone reads, staff write; writes honour If-Match."""

    permission_classes = [ReadOrStaffWrite]
    honours_if_match = True


class ProductCollectionView(ProductView):
    query_methods = frozenset({"get"})
    # A create has no version to match.
    honours_if_match = False

    @extend_schema(
        operation_id="products_list",
        summary="List products with filters, ordering and pagination",
        parameters=[ProductQuerySerializer, _ATTRIBUTE_PARAMETER],
        responses={200: paginated(ProductSerializer), **problems(400)},
        auth=[],
    )
    def get(self, request):
        filters, values = _parse_query(request, ProductQuerySerializer)
        queryset = selectors.product_list(
            filters=filters, ordering=values.get("ordering", "newest")
        )
        return _page(request, self, queryset)

    @extend_schema(
        operation_id="products_create",
        summary="Create a product (staff)",
        request=ProductWriteSerializer,
        responses={201: ProductSerializer, **problems(400, 401, 403, 409)},
    )
    def post(self, request):
        serializer = ProductWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.product_create(
            **serializer.validated_data, **_actor(request)
        )
        location = reverse("products:detail", kwargs={"product_id": product.id})
        response = Response(
            product_representation(product),
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )
        return _with_etag(response, product)


class ProductSearchView(ProductView):
    query_methods = frozenset({"get"})

    @extend_schema(
        operation_id="products_search",
        summary="Full-text search, most relevant first (at most 1,000 results)",
        parameters=[SearchQuerySerializer, _ATTRIBUTE_PARAMETER],
        responses={200: paginated(ProductSerializer), **problems(400)},
        auth=[],
    )
    def get(self, request):
        filters, values = _parse_query(request, SearchQuerySerializer)
        ranked_ids = search.product_search(
            query=values["q"], filters=filters, ordering=values.get("ordering")
        )
        return _page(request, self, ranked_ids, load=selectors.products_in_order)


class ProductDetailView(ProductView):
    @extend_schema(
        operation_id="products_retrieve",
        summary="A product (ETag; If-None-Match answers 304)",
        responses={200: ProductSerializer, 304: None, **problems(404)},
        auth=[],
    )
    def get(self, request, product_id):
        product = selectors.product_get(
            product_id=product_id, include_archived=_is_staff(request)
        )
        # ConditionalGetMiddleware answers If-None-Match with 304.
        return _with_etag(Response(product_representation(product)), product)

    @extend_schema(
        operation_id="products_replace",
        summary="Replace a product (staff; honours If-Match)",
        request=ProductWriteSerializer,
        parameters=[_IF_MATCH],
        responses={200: ProductSerializer, **problems(400, 401, 403, 404, 412)},
    )
    def put(self, request, product_id):
        return self._update(request, product_id, partial=False)

    @extend_schema(
        operation_id="products_update",
        summary="Update part of a product (staff; honours If-Match)",
        request=ProductWriteSerializer,
        parameters=[_IF_MATCH],
        responses={200: ProductSerializer, **problems(400, 401, 403, 404, 412)},
    )
    def patch(self, request, product_id):
        return self._update(request, product_id, partial=True)

    @extend_schema(
        operation_id="products_delete",
        summary="Delete a product (staff; 409 while reserved: archive it)",
        parameters=[_IF_MATCH],
        responses={204: None, **problems(400, 401, 403, 404, 409, 412)},
    )
    def delete(self, request, product_id):
        services.product_delete(
            product_id=product_id, expected_revisions=_expected_revisions(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, product_id, *, partial):
        serializer = ProductWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        if "id" in changes and changes.pop("id") != product_id:
            raise ValidationError({"id": ["A product's id cannot change."]})
        product = services.product_update(
            product_id=product_id,
            expected_revisions=_expected_revisions(request),
            changes=changes,
            **_actor(request),
        )
        return _with_etag(Response(product_representation(product)), product)


class ProductArchiveView(ProductView):
    body_methods = frozenset()

    @extend_schema(
        operation_id="products_archive",
        summary="Archive: hide from customers, keep for order history (staff)",
        request=None,
        parameters=[_IF_MATCH],
        responses={200: ProductSerializer, **problems(400, 401, 403, 404, 412)},
    )
    def post(self, request, product_id):
        return self._set(request, product_id, archived=True)

    @extend_schema(
        operation_id="products_unarchive",
        summary="Bring an archived product back (staff)",
        request=None,
        parameters=[_IF_MATCH],
        responses={200: ProductSerializer, **problems(400, 401, 403, 404, 412)},
    )
    def delete(self, request, product_id):
        return self._set(request, product_id, archived=False)

    def _set(self, request, product_id, *, archived):
        product = services.product_set_archived(
            product_id=product_id,
            archived=archived,
            expected_revisions=_expected_revisions(request),
        )
        return _with_etag(Response(product_representation(product)), product)


class StockAdjustmentView(ProductView):
    @extend_schema(
        operation_id="products_stock_adjust",
        summary="Add or remove stock with a reason (staff; recorded)",
        request=StockAdjustmentSerializer,
        parameters=[_IF_MATCH],
        responses={201: ProductSerializer, **problems(400, 401, 403, 404, 412)},
    )
    def post(self, request, product_id):
        serializer = StockAdjustmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.stock_adjust(
            product_id=product_id,
            expected_revisions=_expected_revisions(request),
            **serializer.validated_data,
            **_actor(request),
        )
        product = selectors.product_get(product_id=product_id, include_archived=True)
        response = Response(product_representation(product), status=201)
        return _with_etag(response, product)
