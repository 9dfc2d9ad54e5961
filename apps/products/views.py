from django.http import HttpResponse
from django.urls import reverse
from django.utils.http import parse_etags
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from apps.core.openapi import paginated, problems
from apps.core.pagination import PageNumberPagination
from apps.core.views import ApiView
from apps.products import cache, search, selectors, services
from apps.products.errors import ProductNotFound
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


def _page(request, view, items, load) -> dict:
    """A page of a list of ``items`` (ids, say), which ``load`` turns into
    products: the search path with typo matches."""
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(items, request, view=view)
    products = load(page)
    data = paginator.get_paginated_response(
        [product_representation(p) for p in products]
    ).data
    data["count_capped"] = len(items) >= search.SEARCH_LIMIT
    return data


def _page_of(request, values, queryset, order, limit=None, past_the_end=False):
    """A page of ``queryset`` from one query, its count capped
    (``selectors.product_page``); answers as PageNumberPagination does: a
    page past the last is a 404, unless ``past_the_end`` (the caller
    decides, and may try another query)."""
    size = PageNumberPagination().get_page_size(request)
    number = values.get("page", 1)
    page = selectors.product_page(
        queryset, order=order, offset=(number - 1) * size, size=size, limit=limit
    )
    if number > 1 and not page.products and not past_the_end:
        raise NotFound("Invalid page.")
    url = request.build_absolute_uri()
    following = number * size < page.count or page.capped
    if number <= 1:
        previous = None
    elif number == 2:
        previous = remove_query_param(url, "page")
    else:
        previous = replace_query_param(url, "page", number - 1)
    return {
        "count": page.count,
        "count_capped": page.capped,
        "next": replace_query_param(url, "page", number + 1) if following else None,
        "previous": previous,
        "results": [product_representation(p) for p in page.products],
    }


def _listing(request, values, build) -> HttpResponse:
    """A list or search page: the JSON of ``build()``, from the page cache
    when no product was written since it was stored (ADR 0027). The query
    was validated before (bad input is a 400, never cached) and errors
    raised by ``build`` store nothing. The cache key is the absolute URI:
    the body's next and previous links are built from it. Staff's archived
    listings are not cached. The body is the same bytes on a hit and a
    miss; ConditionalGetMiddleware gives it an ETag and answers 304."""

    def render() -> bytes:
        return _RENDERER.render(build())

    if values.get("archived"):
        body = render()
    else:
        body = cache.cached_listing(request.build_absolute_uri(), render)
    return HttpResponse(body, content_type="application/json")


class ProductView(ApiView):
    """Anyone reads, staff write; writes honour If-Match."""

    permission_classes = [ReadOrStaffWrite]
    honours_if_match = True


# The Accept headers DRF's content negotiation answers with plain JSON for
# the catalog's reads: none, anything, or JSON itself.
_PLAIN_JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})


def _plain_json_get(request) -> bool:
    return (
        request.method == "GET"
        and request.META.get("HTTP_ACCEPT", "") in _PLAIN_JSON_ACCEPTS
    )


def _json_response(body: bytes, allowed_methods, etag: str | None = None):
    """A catalog read's answer, with the headers DRF's path sets too, so
    that it is the same whichever path gave it (the shortcuts below)."""
    headers = {"Allow": ", ".join(allowed_methods), "Vary": "Accept"}
    if etag is not None:
        headers["ETag"] = etag
    return HttpResponse(body, content_type="application/json", headers=headers)


class CachedPagesFirst:
    """A list or search page already in the page cache is answered before
    DRF wraps the request and validates its query (a hit's CPU was a
    quarter validation; ADR 0029). Sound because a page is stored only
    after its query was valid, under its exact address, and never for
    staff's archived listings: a stored page is what DRF's path answers
    for that address, whoever asks."""

    def dispatch(self, request, *args, **kwargs):
        if _plain_json_get(request):
            body = cache.stored_listing(request.build_absolute_uri())
            if body is not None:
                return _json_response(body, self.allowed_methods)
        return super().dispatch(request, *args, **kwargs)


class ProductCollectionView(CachedPagesFirst, ProductView):
    query_methods = frozenset({"get"})
    # A create has no version to match.
    honours_if_match = False

    @extend_schema(
        operation_id="products_list",
        summary="List products with filters, ordering and pagination",
        parameters=[ProductQuerySerializer, _ATTRIBUTE_PARAMETER],
        responses={200: paginated(ProductSerializer, capped=True), **problems(400)},
        auth=[],
    )
    def get(self, request):
        filters, values = _parse_query(request, ProductQuerySerializer)
        ordering = selectors.ORDERINGS[values.get("ordering", "newest")]

        def build():
            queryset = selectors.products_filtered(filters)
            return _page_of(request, values, queryset, ordering)

        return _listing(request, values, build)

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


class ProductSearchView(CachedPagesFirst, ProductView):
    query_methods = frozenset({"get"})

    @extend_schema(
        operation_id="products_search",
        summary="Full-text search, most relevant first (at most 1,000 results)",
        parameters=[SearchQuerySerializer, _ATTRIBUTE_PARAMETER],
        responses={200: paginated(ProductSerializer, capped=True), **problems(400)},
        auth=[],
    )
    def get(self, request):
        filters, values = _parse_query(request, SearchQuerySerializer)
        return _listing(
            request, values, lambda: self._results(request, filters, values)
        )

    def _results(self, request, filters, values) -> dict:
        terms = search.search_terms(values["q"])
        if terms and search.pages_in_one_query():
            # The words' matches, one query; with typo tolerance, another,
            # only when they are too few.
            # Which query answers is decided by its count, whatever the page
            # asked: page 2 of a search that the typo query completed comes
            # from the typo query too, as page 1 announced it.
            queries = search.page_queries(terms, filters, values.get("ordering"))
            for queryset, order in queries:
                page = _page_of(
                    request,
                    values,
                    queryset,
                    order,
                    limit=search.SEARCH_LIMIT,
                    past_the_end=True,
                )
                if page["count"] >= search.TYPO_FALLBACK_BELOW:
                    break
            if values.get("page", 1) > 1 and not page["results"]:
                raise NotFound("Invalid page.")
            return page
        ranked_ids = search.product_search(
            query=values["q"], filters=filters, ordering=values.get("ordering")
        )
        return _page(request, self, ranked_ids, load=selectors.products_in_order)


_RENDERER = JSONRenderer()


def _detail(product_id: str) -> tuple[bytes, str, bool] | None:
    """A product's detail response, as the cache keeps it: the JSON body,
    the ETag, and whether it is archived (shown to staff only)."""
    try:
        product = selectors.product_get(product_id=product_id, include_archived=True)
    except ProductNotFound:
        return None
    body = _RENDERER.render(product_representation(product))
    return body, _etag(product), product.is_archived


# What get() finds when dispatch() has not looked the product up.
_NOT_LOOKED_UP = object()


class ProductDetailView(ProductView):
    def dispatch(self, request, *args, **kwargs):
        """A GET of a product anyone may see, answered from its cached JSON
        before DRF wraps the request, authenticates and negotiates: that was
        a sixth of a cached read's CPU (docs/performance.md). It answers
        only what DRF would answer the same way (no query string, a JSON
        Accept, a product that is not archived) with the same headers;
        every other request, and the 404 or archived product, goes through
        DRF, which reuses the lookup made here."""
        if _plain_json_get(request) and not request.META.get("QUERY_STRING"):
            product_id = kwargs["product_id"]
            found = cache.cached_product(product_id, lambda: _detail(product_id))
            if found is not None and not found[2]:
                return _json_response(found[0], self.allowed_methods, etag=found[1])
            request.product_found = found
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        operation_id="products_retrieve",
        summary="A product (ETag; If-None-Match answers 304)",
        responses={200: ProductSerializer, 304: None, **problems(404)},
        auth=[],
    )
    def get(self, request, product_id):
        # Body, ETag and archived flag from one cache round trip (ADR 0026);
        # ConditionalGetMiddleware answers If-None-Match with 304.
        found = getattr(request._request, "product_found", _NOT_LOOKED_UP)
        if found is _NOT_LOOKED_UP:
            found = cache.cached_product(product_id, lambda: _detail(product_id))
        if found is None or (found[2] and not _is_staff(request)):
            raise ProductNotFound(f"No product with id {product_id}.")
        return _json_response(found[0], self.allowed_methods, etag=found[1])

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
