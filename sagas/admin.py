"""Operators' view of sagas: steps, attempts, errors, timings; stuck sagas;
retry and forced compensation through the engine's services."""

from django.contrib import admin, messages

from apps.core.admin import ReadOnlyAdmin
from sagas import engine
from sagas.models import (
    Saga,
    SagaStepLog,
    SandboxCharge,
    SandboxRefund,
    SandboxShipment,
)
from sagas.selectors import stuck_sagas


class SagaStepLogInline(admin.TabularInline):
    model = SagaStepLog
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "step_index", "step", "kind", "status", "attempts",
        "started_at", "finished_at", "last_error",
    )  # fmt: skip

    def has_add_permission(self, request, obj=None):
        return False


class StuckFilter(admin.SimpleListFilter):
    """Running or compensating, and past its lease deadline, halted (no
    deadline: a compensation gave up) or without progress for
    SAGA_STUCK_MINUTES (default 10)."""

    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [("yes", "Stuck")]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        return stuck_sagas(queryset=queryset)


@admin.register(Saga)
class SagaAdmin(ReadOnlyAdmin):
    list_display = (
        "order_id", "saga_type", "status", "current_step", "failure_reason",
        "lease_owner", "lease_expires_at", "updated_at",
    )  # fmt: skip
    list_filter = ("status", StuckFilter, "saga_type")
    search_fields = ("=order_id", "=id")
    readonly_fields = [f.name for f in Saga._meta.fields]
    inlines = [SagaStepLogInline]
    # Every field is the engine's: the page is for reading (ReadOnlyAdmin);
    # operators act through the actions below.
    actions = ["retry_saga", "force_compensation"]

    def has_operate_permission(self, request):
        """Retry and force compensation: operators who may change sagas."""
        return request.user.has_perm("sagas.change_saga")

    @admin.action(
        description="Retry the current step of the selected sagas",
        permissions=["operate"],
    )
    def retry_saga(self, request, queryset):
        retried = sum(engine.saga_retry(saga_id=s.pk) for s in queryset)
        self.message_user(request, f"{retried} saga(s) queued again.")

    @admin.action(
        description="Force compensation (cancels the orders)",
        permissions=["operate"],
    )
    def force_compensation(self, request, queryset):
        for saga in queryset:
            engine.saga_compensate(saga_id=saga.pk, reason="Cancelled by the shop")
        self.message_user(
            request, f"{queryset.count()} saga(s) compensating.", messages.WARNING
        )


@admin.register(SandboxCharge)
class SandboxChargeAdmin(ReadOnlyAdmin):
    list_display = ("id", "amount", "token", "status", "created_at")
    list_filter = ("status", "token")
    search_fields = ("=id", "idempotency_key")


@admin.register(SandboxRefund)
class SandboxRefundAdmin(ReadOnlyAdmin):
    list_display = ("id", "charge", "amount", "created_at")


@admin.register(SandboxShipment)
class SandboxShipmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "order_id", "status", "created_at", "cancelled_at")
    list_filter = ("status",)
    search_fields = ("=order_id",)
