import json

from django import forms
from django.contrib import admin, messages
from django.db import models

from apps.core.admin import ReadOnlyAdmin
from apps.core.errors import DomainError
from apps.products import services
from apps.products.models import Product, StockAdjustment, StockReservation


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


class AsciiJSONField(forms.JSONField):
    """JSON shown with non-ASCII escaped: a value the model refuses (a lone
    surrogate) is re-displayed as ``\\udc80`` instead of breaking the page."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return json.dumps(value, ensure_ascii=True, cls=self.encoder)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    formfield_overrides = {models.JSONField: {"form_class": AsciiJSONField}}
    list_display = ("id", "name", "category", "price", "stock", "is_archived")
    list_filter = ("is_archived", StockLevelFilter, "category")
    search_fields = ("id", "name", "category")
    # Stock changes only through recorded adjustments.
    readonly_fields = ("stock", "sold_count", "version", "created_at", "updated_at")
    actions = ("archive", "unarchive")
    list_per_page = 50
    show_full_result_count = False

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
                    expected_revision=None,
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


class StockAdjustmentForm(forms.ModelForm):
    class Meta:
        model = StockAdjustment
        fields = ("product_id", "delta", "reason")

    def clean(self):
        cleaned = super().clean()
        product_id, delta = cleaned.get("product_id"), cleaned.get("delta")
        if product_id is None or delta is None:
            return cleaned
        stock = (
            Product.objects.filter(pk=product_id)
            .values_list("stock", flat=True)
            .first()
        )
        if stock is None:
            self.add_error("product_id", "No product with this id.")
        elif delta == 0:
            self.add_error("delta", "Must not be zero.")
        elif stock + delta < 0:
            self.add_error("delta", f"Only {stock} in stock.")
        return cleaned


@admin.register(StockAdjustment)
class StockAdjustmentAdmin(admin.ModelAdmin):
    """Operators add an adjustment (product, units, reason); it is applied
    to the stock and kept as a record. Records cannot be edited."""

    form = StockAdjustmentForm
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
