import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.admin.widgets import AutocompleteSelect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from apps.core.admin import ReadOnlyAdmin
from apps.core.errors import DomainError
from apps.products import services
from apps.products.models import (
    MAX_STOCK,
    Product,
    StockAdjustment,
    StockReservation,
)


class StockLevelFilter(admin.SimpleListFilter):
    title = "stock"
    parameter_name = "stock_level"

    def lookups(self, request, model_admin):
        return [("out", "Out of stock"), ("low", "Low (1-10)"), ("in", "In stock")]

    def queryset(self, request, queryset):
        if self.value() == "out":
            return queryset.filter(stock=0)
        if self.value() == "low":
            return queryset.filter(stock__gte=1, stock__lte=10)
        if self.value() == "in":
            return queryset.filter(stock__gt=0)
        return queryset


def _printable(text: str) -> str:
    """Text safe to put in a page: a value the model refuses (a lone
    surrogate) is shown as ``\\udc80`` instead of breaking the page."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class ReadableJSONField(forms.JSONField):
    """JSON shown indented, text as written ("crème", not "cr\\u00e8me"),
    but for what the page cannot hold (see ``_printable``)."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return _printable(value)
        text = json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)
        return _printable(text)


class SeparatedListField(forms.CharField):
    """A list of text edited as text: tags separated by commas, URLs one a
    line. The model's rules (Product.clean) check the items."""

    def __init__(self, *, separator: str, **kwargs):
        self.separator = separator
        super().__init__(required=False, strip=False, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            value = self.separator.join(str(item) for item in value)
        return _printable(value or "")

    def to_python(self, value):
        text = super().to_python(value)
        separator = self.separator.strip() or "\n"
        return [item.strip() for item in text.split(separator) if item.strip()]


def _help(name: str) -> str:
    return Product._meta.get_field(name).help_text


class ProductForm(forms.ModelForm):
    tags = SeparatedListField(
        separator=", ",
        help_text=f"Separated by commas, e.g. coffee, steel. {_help('tags')}",
        widget=forms.TextInput(attrs={"size": 80}),
    )
    images = SeparatedListField(
        separator="\n",
        help_text=f"One URL a line. {_help('images')}",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
    )
    attributes = ReadableJSONField(
        required=False,
        help_text='A JSON object, e.g. {"colour": "red", "watts": 40}. '
        + _help("attributes"),
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
    )

    class Meta:
        model = Product
        fields = (
            "id",
            "name",
            "category",
            "price",
            "description",
            "tags",
            "images",
            "attributes",
            "is_archived",
        )

    def clean_attributes(self):
        # An empty box is no attributes, not a JSON null.
        value = self.cleaned_data["attributes"]
        return {} if value is None else value


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductForm
    list_display = ("id", "name", "category", "price", "stock", "is_archived")
    list_filter = ("is_archived", StockLevelFilter, "category")
    search_fields = ("id", "name", "category")
    fieldsets = (
        (None, {"fields": ("id", "name", "category", "price", "description")}),
        ("Stock", {"fields": ("stock_level", "sold_count")}),
        ("Details", {"fields": ("tags", "images", "attributes")}),
        ("Status", {"fields": ("is_archived", "version", "created_at", "updated_at")}),
    )
    # Stock changes only through recorded adjustments (and orders).
    readonly_fields = (
        "stock_level",
        "sold_count",
        "version",
        "created_at",
        "updated_at",
    )
    actions = ("archive", "unarchive")
    list_per_page = 50
    show_full_result_count = False

    @admin.display(description="Stock")
    def stock_level(self, obj):
        if obj is None or obj.pk is None or obj._state.adding:
            return "0: add stock with a stock adjustment once the product is saved."
        add = reverse("admin:products_stockadjustment_add")
        history = reverse("admin:products_stockadjustment_changelist")
        return format_html(
            '{} in stock. Stock changes only through <a href="{}?{}">a stock '
            "adjustment</a> (with a reason, recorded) and orders; "
            '<a href="{}?{}">adjustment history</a>.',
            obj.stock,
            add,
            urlencode({"product": obj.pk}),
            history,
            urlencode({"product__exact": obj.pk}),
        )

    def get_urls(self):
        return [
            path(
                "autocomplete-with-stock/",
                self.admin_site.admin_view(
                    ProductStockAutocomplete.as_view(admin_site=self.admin_site)
                ),
                name="products_product_autocomplete_with_stock",
            ),
            *super().get_urls(),
        ]

    def get_readonly_fields(self, request, obj=None):
        # The id is chosen once, at creation.
        return self.readonly_fields + (("id",) if obj else ())

    def save_model(self, request, obj, form, change):
        """Through the services: normalised tags, a version bump (ETag), the
        lost-update guard, and stock left to reservations and adjustments."""
        actor = {"actor_id": str(request.user.pk), "actor_email": request.user.email}
        fields = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in services.PRODUCT_FIELDS or name == "is_archived"
        }
        archived = fields.pop("is_archived", None)
        try:
            if change:
                product = services.product_update(
                    product_id=obj.pk,
                    expected_revisions=None,
                    changes=fields,
                    **actor,
                )
            else:
                product = services.product_create(
                    id=obj.pk,
                    **{k: getattr(obj, k) for k in services.PRODUCT_FIELDS},
                    **actor,
                )
            if archived is not None:
                product = services.product_set_archived(
                    product_id=product.pk, archived=archived
                )
        except DomainError as exc:
            self.message_user(request, f"Not saved: {exc.detail}", messages.ERROR)
            return
        obj.__dict__.update(product.__dict__)

    def delete_model(self, request, obj):
        try:
            services.product_delete(product_id=obj.pk)
        except DomainError as exc:
            self.message_user(request, f"Not deleted: {exc.detail}", messages.ERROR)

    def delete_queryset(self, request, queryset):
        for product_id in queryset.values_list("id", flat=True):
            try:
                services.product_delete(product_id=product_id)
            except DomainError as exc:
                self.message_user(
                    request, f"{product_id} not deleted: {exc.detail}", messages.ERROR
                )

    @admin.action(description="Archive (hide from customers)")
    def archive(self, request, queryset):
        for product_id in queryset.values_list("id", flat=True):
            services.product_set_archived(product_id=product_id, archived=True)
        self.message_user(request, "Archived.")

    @admin.action(description="Unarchive")
    def unarchive(self, request, queryset):
        for product_id in queryset.values_list("id", flat=True):
            services.product_set_archived(product_id=product_id, archived=False)
        self.message_user(request, "Unarchived.")


def _with_stock(product: Product) -> str:
    return f"{product.name} ({product.pk}): {product.stock} in stock"


class ProductStockAutocomplete(AutocompleteJsonView):
    """The admin's product search, each product shown with its stock."""

    def serialize_result(self, obj, to_field_name):
        return {"id": str(getattr(obj, to_field_name)), "text": _with_stock(obj)}


class ProductStockSelect(AutocompleteSelect):
    url_name = "%s:products_product_autocomplete_with_stock"


class ProductStockChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return _with_stock(obj)


class StockAdjustmentForm(forms.ModelForm):
    class Meta:
        model = StockAdjustment
        fields = ("product", "delta", "reason")

    def clean(self):
        # Said here to show it beside the field; stock_adjust enforces it.
        cleaned = super().clean()
        product, delta = cleaned.get("product"), cleaned.get("delta")
        if product is None or delta is None:
            return cleaned
        if delta == 0:
            self.add_error("delta", "Must not be zero.")
        elif not 0 <= product.stock + delta <= MAX_STOCK:
            self.add_error(
                "delta",
                f"Only {product.stock} in stock."
                if delta < 0
                else f"The stock may not exceed {MAX_STOCK}.",
            )
        return cleaned


@admin.register(StockAdjustment)
class StockAdjustmentAdmin(admin.ModelAdmin):
    """Operators add an adjustment (product, units, reason); it is applied
    to the stock and kept as a record. Records cannot be edited."""

    form = StockAdjustmentForm
    autocomplete_fields = ("product",)
    list_display = (
        "created_at",
        "product_id",
        "delta",
        "stock_after",
        "reason",
        "actor_email",
    )
    search_fields = ("product_id", "reason", "actor_email")
    list_filter = ("created_at",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "product":
            kwargs["widget"] = ProductStockSelect(
                db_field, self.admin_site, attrs={"data-width": "40em"}
            )
            kwargs["form_class"] = ProductStockChoiceField
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "product":
            # An adjustment picks a product; adding, editing or deleting
            # one from here is another task (the product is linked to view).
            field.widget.can_add_related = False
            field.widget.can_change_related = False
            field.widget.can_delete_related = False
        return field

    def save_model(self, request, obj, form, change):
        try:
            adjustment = services.stock_adjust(
                product_id=obj.product_id,
                delta=obj.delta,
                reason=obj.reason,
                actor_id=str(request.user.pk),
                actor_email=request.user.email,
            )
        except DomainError as exc:
            # Stock moved between the form's check and now.
            self.message_user(request, f"Not applied: {exc.detail}", messages.ERROR)
            return
        obj.pk = adjustment.pk
        obj.stock_after = adjustment.stock_after


@admin.register(StockReservation)
class StockReservationAdmin(ReadOnlyAdmin):
    """Operators look only: a reservation moves through its order (reserve,
    release, commit and the sweeper), never by hand. Deleting an active one
    lost its stock for good; editing its status or items would lose or
    create stock too, and releasing it behind its order's back would leave
    the order to sell stock it no longer holds."""

    list_display = ("order_ref", "status", "expires_at", "created_at")
    list_filter = ("status",)
    search_fields = ("order_ref",)
