"""Orders for operators: read-only, with items, history and events.

Orders are placed through the API and change status only through the
services (the actions below), so the history and the events stay complete.
"""

from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from apps.core.admin import ReadOnlyAdmin
from apps.core.errors import DomainError
from apps.orders import selectors, services
from apps.orders.messaging_models import Notification, OutboxEvent
from apps.orders.models import Order, OrderItem, OrderStatusChange


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OrderItemInline(_ReadOnlyInline):
    model = OrderItem
    fields = ("product_id", "product_name", "category", "quantity", "price")
    readonly_fields = fields


class OrderStatusChangeInline(_ReadOnlyInline):
    model = OrderStatusChange
    fields = ("created_at", "from_status", "to_status", "reason", "actor")
    readonly_fields = fields
    verbose_name_plural = "history"


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("id", "user_id", "status", "total_amount", "created_at")
    list_filter = ("status", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("id", "user_id")
    fields = (
        "id",
        "user_id",
        "status",
        "total_amount",
        "cancel_reason",
        "created_at",
        "updated_at",
        "saga",
        "events",
    )
    readonly_fields = fields
    inlines = (OrderItemInline, OrderStatusChangeInline)
    actions = ("ship", "complete", "cancel")
    list_per_page = 50
    show_full_result_count = False

    def has_transition_permission(self, request):
        """Status actions: for operators allowed to change orders."""
        return request.user.has_perm("orders.change_order")

    @admin.display(description="saga")
    def saga(self, obj):
        """A link to the order's saga (steps, attempts, errors) in the sagas
        admin, by URL name: this context does not import the saga."""
        try:
            url = reverse("admin:sagas_saga_changelist")
        except NoReverseMatch:
            return "-"
        return format_html(
            '<a href="{}?q={}">Steps, attempts and errors</a>', url, obj.id
        )

    @admin.display(description="events")
    def events(self, order):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    event.sequence,
                    event.event_type,
                    event.created_at,
                    event.published_at or "pending",
                    event.attempts,
                )
                for event in selectors.order_events(order_id=order.id)
            ),
        )
        return format_html(
            "<table><thead><tr><th>#</th><th>type</th><th>created</th>"
            "<th>published</th><th>attempts</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    def _apply(self, request, queryset, service, done: str):
        actor = f"staff:{request.user.email}"
        changed = 0
        for order_id in queryset.values_list("id", flat=True):
            try:
                service(order_id=order_id, actor=actor)
            except DomainError as exc:
                self.message_user(request, f"{order_id}: {exc.detail}", messages.ERROR)
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{done} {changed} order(s).")

    @admin.action(
        description="Ship selected orders (confirmed only)", permissions=["transition"]
    )
    def ship(self, request, queryset):
        self._apply(request, queryset, services.order_ship, "Shipped")

    @admin.action(
        description="Complete selected orders (shipped only)",
        permissions=["transition"],
    )
    def complete(self, request, queryset):
        self._apply(request, queryset, services.order_complete, "Completed")

    @admin.action(
        description="Cancel selected orders (pending or confirmed)",
        permissions=["transition"],
    )
    def cancel(self, request, queryset):
        self._apply(request, queryset, services.order_cancel, "Cancelled")


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    """The events waiting for the relay (published is empty) and those
    sent; attempts and the last error tell why one is stuck."""

    list_display = (
        "created_at",
        "event_type",
        "aggregate_id",
        "sequence",
        "published_at",
        "attempts",
    )
    list_filter = (("published_at", admin.EmptyFieldListFilter), "event_type")
    search_fields = ("=aggregate_id", "=id")
    date_hierarchy = "created_at"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """The e-mails sent to customers, one per order event."""

    list_display = ("sent_at", "recipient", "subject", "event_type")
    list_filter = ("event_type",)
    search_fields = ("recipient", "=order_id")
    date_hierarchy = "sent_at"
