"""Catalog persistence. Fields work on PostgreSQL, SQLite and MongoDB.

String or UUID primary keys only (django-mongodb-backend has no AutoField),
JSONField for lists and free-form attributes, and no enforced foreign keys
(MongoDB has none): a stock adjustment names its product through an
unconstrained one, for the admin's look-up.

The product rules (what an id, tags, images and attributes may hold, the
stock bounds) are stated here, once, and checked by ``full_clean``, which
the services run for every writer: the API, the admin, the commands. The
serializers, URL patterns and selectors import them.
"""

import math
import re
import secrets
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
    URLValidator,
)
from django.db import models

from apps.products.messaging_models import InboxEntry  # noqa: F401

PRODUCT_ID_MAX_LENGTH = 64
# The product id alphabet; URL patterns match it (apps.products.urls).
PRODUCT_ID_PATTERN = rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{PRODUCT_ID_MAX_LENGTH - 1}}}"
product_id_validator = RegexValidator(
    rf"^{PRODUCT_ID_PATTERN}\Z",
    "A product id is 1 to 64 letters, digits, '.', '_' or '-', starting "
    "with a letter or digit.",
)
# Ids that name another resource under /products/.
RESERVED_PRODUCT_IDS = frozenset({"search"})

# Stock fits PostgreSQL's integer column with room to spare.
MAX_STOCK = 1_000_000_000

MAX_TAGS = 20
TAG_MAX_LENGTH = 50
MAX_IMAGES = 10
IMAGE_URL_MAX_LENGTH = 500
MAX_ATTRIBUTES = 50
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,49}\Z")
ATTRIBUTE_VALUE_MAX_LENGTH = 200

_image_url = URLValidator(schemes=["http", "https"])


def validate_product_id(value: str) -> None:
    product_id_validator(value)
    if value in RESERVED_PRODUCT_IDS:
        raise ValidationError(f"{value!r} is reserved.", code="reserved")


def validate_tags(value) -> None:
    if not isinstance(value, list):
        raise ValidationError("Tags are a list of text.", code="not_a_list")
    if len(value) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags.", code="max_length")
    for tag in value:
        if not isinstance(tag, str):
            raise ValidationError("Every tag is text.", code="not_a_string")
        if not tag.strip():
            raise ValidationError("A tag may not be blank.", code="blank")
        if len(tag) > TAG_MAX_LENGTH:
            raise ValidationError(
                f"A tag is at most {TAG_MAX_LENGTH} characters.", code="max_length"
            )


def validate_images(value) -> None:
    if not isinstance(value, list):
        raise ValidationError("Images are a list of URLs.", code="not_a_list")
    if len(value) > MAX_IMAGES:
        raise ValidationError(f"At most {MAX_IMAGES} images.", code="max_length")
    for url in value:
        if not isinstance(url, str):
            raise ValidationError("Every image is a URL.", code="not_a_string")
        if len(url) > IMAGE_URL_MAX_LENGTH:
            raise ValidationError(
                f"An image URL is at most {IMAGE_URL_MAX_LENGTH} characters.",
                code="max_length",
            )
        try:
            _image_url(url)
        except ValidationError:
            raise ValidationError(
                f"{url[:60]!r} is not an http(s) URL.", code="invalid_url"
            ) from None


def validate_attributes(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError(
            "Attributes are an object of names and values.", code="not_a_dict"
        )
    if len(value) > MAX_ATTRIBUTES:
        raise ValidationError(
            f"At most {MAX_ATTRIBUTES} attributes.", code="max_length"
        )
    for name, item in value.items():
        if not ATTRIBUTE_NAME.match(name):
            raise ValidationError(
                f"Attribute name {name[:60]!r} must be a letter then up to 49 "
                "letters, digits or underscores.",
                code="invalid_name",
            )
        if isinstance(item, str):
            if len(item) > ATTRIBUTE_VALUE_MAX_LENGTH:
                raise ValidationError(
                    f"Attribute {name}: at most {ATTRIBUTE_VALUE_MAX_LENGTH} "
                    "characters.",
                    code="max_length",
                )
        elif item is not None and not isinstance(item, (bool, int, float)):
            raise ValidationError(
                f"Attribute {name}: must be text, a number, true, false or null.",
                code="not_a_scalar",
            )


# The JSON fields' rules, run by Product.clean on every value (a field's
# validators skip "empty" values, and "" is no list).
_JSON_RULES = {
    "tags": validate_tags,
    "images": validate_images,
    "attributes": validate_attributes,
}


def new_product_id() -> str:
    return uuid.uuid4().hex


def new_incarnation() -> str:
    return secrets.token_hex(8)


# Text that cannot be stored: PostgreSQL refuses NUL in text and jsonb, and
# a lone surrogate (JSON's "\ud800") is no Unicode text at all. The API's
# text fields refuse both; tags, images and attributes are JSON values.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _unstorable(value) -> str | None:
    """Why a JSON value, keys included, cannot be stored, or None: text as
    above, or a number that is not finite (JSON parsers read 1e400 as
    infinity; no engine stores infinity or NaN in JSON)."""
    pending = [value]
    while pending:  # A loop, not recursion: the value may nest deeply.
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and _UNSTORABLE.search(item):
            return "Text may not contain null characters or lone surrogates."
        elif isinstance(item, float) and not math.isfinite(item):
            return "Numbers must be finite (not too large, not NaN)."
    return None


# The columns that list filters read besides tags, attributes and stock.
# Not stock: a reservation changes only stock, and while no index holds it,
# PostgreSQL updates the row in place (a HOT update: no index entries).
_LIST_FILTERED = ["category", "price", "is_archived"]


class Product(models.Model):
    id = models.CharField(
        primary_key=True,
        max_length=PRODUCT_ID_MAX_LENGTH,
        default=new_product_id,
        validators=[validate_product_id],
        help_text="Letters, digits, '.', '_' or '-'; chosen once, in URLs.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="", max_length=5000)
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(0)]
    )
    # The quantity available to sell: reservations take from it.
    stock = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_STOCK)],
        help_text="Changes only through stock adjustments and orders.",
    )
    category = models.CharField(max_length=100)
    tags = models.JSONField(
        default=list,
        blank=True,
        help_text=f"Up to {MAX_TAGS} words or phrases, each up to "
        f"{TAG_MAX_LENGTH} characters; stored lower-case.",
    )
    images = models.JSONField(
        default=list,
        blank=True,
        help_text=f"Up to {MAX_IMAGES} http(s) URLs.",
    )
    attributes = models.JSONField(
        default=dict,
        blank=True,
        help_text=f"Up to {MAX_ATTRIBUTES} names (a letter, then letters, digits "
        f"or _) with a value each: text up to {ATTRIBUTE_VALUE_MAX_LENGTH} "
        "characters, a number, true, false or null.",
    )
    # Hidden from customers, kept for order history.
    is_archived = models.BooleanField(default=False)
    # Units sold (committed reservations): "best selling" ordering.
    sold_count = models.PositiveIntegerField(default=0)
    # Bumped by every write, stock included: the ETag, and the guard
    # against lost updates.
    version = models.PositiveIntegerField(default=1)
    # New for each row created: a product deleted and created again under
    # its id starts at version 1 again, and must not share its revisions.
    incarnation = models.CharField(
        max_length=16, default=new_incarnation, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        # Each ordering ends with "id" (a stable page order), and so does its
        # index: the database then reads a page in order and stops. Each also
        # carries the columns most list filters read (PostgreSQL INCLUDE), so
        # counting a page's matches reads the index only, not the table.
        indexes = [
            models.Index(
                fields=["category", "price", "id"],
                name="product_category_price",
                include=["is_archived"],
            ),
            models.Index(
                fields=["price", "id"],
                name="product_price",
                include=["category", "is_archived"],
            ),
            models.Index(
                fields=["-created_at", "id"],
                name="product_created",
                include=_LIST_FILTERED,
            ),
            models.Index(
                fields=["-sold_count", "id"],
                name="product_sold",
                include=_LIST_FILTERED,
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.id})"

    @property
    def revision(self) -> str:
        """What names this content of this product (the ETag's value)."""
        return f"{self.version}-{self.incarnation}"

    def clean(self):
        errors = {}
        for name, rule in _JSON_RULES.items():
            value = getattr(self, name)
            try:
                rule(value)
                problem = _unstorable(value)
                if problem:
                    raise ValidationError(problem, code="unstorable")
            except ValidationError as exc:
                errors[name] = exc.error_list
        if errors:
            raise ValidationError(errors)


class StockAdjustment(models.Model):
    """An operator's change of stock, with who, when, how much and why."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Not enforced (MongoDB enforces none, and a product deleted later keeps
    # its record); it gives the admin a look-up of the product.
    product = models.ForeignKey(
        Product,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        help_text="Search by name, id or category.",
    )
    delta = models.IntegerField(
        validators=[MinValueValidator(-MAX_STOCK), MaxValueValidator(MAX_STOCK)],
        help_text="Units added (negative: removed).",
    )
    stock_after = models.PositiveIntegerField()
    reason = models.CharField(max_length=500)
    actor_id = models.CharField(max_length=64, blank=True, default="")
    actor_email = models.CharField(max_length=254, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.product_id} {self.delta:+d}: {self.reason}"


class ReservationStatus(models.TextChoices):
    """Moves only as apps.products.reservations.TRANSITIONS allows."""

    PENDING = "pending", "Pending"  # being applied item by item
    # Released while being made: its maker (or the sweeper) gives it back.
    RELEASING = "releasing", "Releasing"
    ACTIVE = "active", "Active"  # stock held for the order
    COMMITTED = "committed", "Committed"  # sold
    RELEASED = "released", "Released"  # stock given back (cancel or expiry)
    # Never completed (short, or interrupted and repaired); holds nothing.
    FAILED = "failed", "Failed"
    RETURNED = "returned", "Returned"  # sold, then given back (a refund)


class StockReservation(models.Model):
    """Stock held for one order reference; makes every call idempotent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_ref = models.CharField(max_length=100, unique=True)
    # [{"product_id": str, "quantity": int}], sorted by product id.
    items = models.JSONField()
    # Product ids of the items, for "open reservations of a product".
    product_ids = models.JSONField()
    # Product ids whose stock has been taken so far (repair after a crash).
    applied = models.JSONField(default=list)
    status = models.CharField(
        max_length=16, choices=ReservationStatus.choices, default="pending"
    )
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "expires_at"], name="reservation_due"),
        ]

    def __str__(self):
        return f"{self.order_ref} ({self.status})"
