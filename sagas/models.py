"""Saga state and the sandbox providers' records (alias ``orders``).

A saga is one row (its status, the step it is at, who holds it) plus a log
row per step and compensation it ran. Order ids are stored, not referenced:
the orders context owns its tables.
"""

import uuid

from django.db import models
from django.utils import timezone

from apps.core.messaging.models import InboxEntryBase


class SagaStatus(models.TextChoices):
    RUNNING = "running", "Running"  # forward steps run, one after the other
    COMPENSATING = "compensating", "Compensating"  # undoing, last step first
    COMPLETED = "completed", "Completed"  # every step done; the order confirmed
    FAILED = "failed", "Failed"  # compensations ran; the order cancelled


class StepKind(models.TextChoices):
    FORWARD = "forward", "Forward"  # the step's action
    COMPENSATION = "compensation", "Compensation"  # what undoes it


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"  # a worker runs it (or died running it)
    RETRYING = "retrying", "Retrying"  # failed transiently; a retry is due
    DONE = "done", "Done"  # succeeded; never runs again
    FAILED = "failed", "Failed"  # failed for good (or out of attempts)


class Saga(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    saga_type = models.CharField(max_length=64)
    order_id = models.UUIDField()
    status = models.CharField(
        max_length=16, choices=SagaStatus.choices, default=SagaStatus.RUNNING
    )
    # Running: the next forward step to run. Compensating: the next
    # compensation to run (counting down); -1 once none is left.
    current_step = models.IntegerField(default=0)
    # Outputs of the steps (charge id, shipment id...), for the later steps
    # and the compensations.
    context = models.JSONField(default=dict, blank=True)
    # A cancel arrived while a worker held the saga: compensate after it.
    cancel_requested = models.BooleanField(default=False)
    # Why the saga compensates, as the customer sees it.
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    # The Celery task id running the current step ("" while the step waits
    # in the queue or for a retry). While running or compensating, the lease
    # always has a deadline: the sweeper re-queues a saga past it.
    lease_owner = models.CharField(max_length=255, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "sagas_saga"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["saga_type", "order_id"], name="sagas_saga_one_per_order"
            )
        ]
        indexes = [
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(status__in=["running", "compensating"]),
                name="sagas_saga_active_lease",
            ),
            models.Index(fields=["order_id"], name="sagas_saga_order"),
        ]

    def __str__(self):
        return f"{self.saga_type} {self.order_id} ({self.status})"


class SagaStepLog(models.Model):
    id = models.BigAutoField(primary_key=True)
    saga = models.ForeignKey(Saga, on_delete=models.CASCADE, related_name="steps")
    step_index = models.PositiveSmallIntegerField()
    step = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=StepKind.choices)
    status = models.CharField(max_length=16, choices=StepStatus.choices)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "sagas_step_log"
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["saga", "step_index", "kind"], name="sagas_step_once"
            )
        ]

    def __str__(self):
        return f"{self.step} {self.kind}: {self.status}"


class InboxEntry(InboxEntryBase):
    """An order event the saga consumer has applied."""

    class Meta(InboxEntryBase.Meta):
        db_table = "sagas_inbox"
        verbose_name_plural = "inbox entries"


# -- The sandbox providers' own records ---------------------------------------


class SandboxChargeStatus(models.TextChoices):
    CAPTURED = "captured", "Captured"  # money taken
    REFUNDED = "refunded", "Refunded"  # money given back in full


class SandboxCharge(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    idempotency_key = models.CharField(max_length=255, unique=True)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    token = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=SandboxChargeStatus.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "sagas_sandbox_charge"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.id} {self.amount} ({self.status})"


class SandboxRefund(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    charge = models.ForeignKey(
        SandboxCharge, on_delete=models.PROTECT, related_name="refunds"
    )
    idempotency_key = models.CharField(max_length=255, unique=True)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "sagas_sandbox_refund"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.id} of {self.charge_id}"


class SandboxShipmentStatus(models.TextChoices):
    CREATED = "created", "Created"  # label bought, waiting for pick-up
    CANCELLED = "cancelled", "Cancelled"  # label voided


class SandboxShipment(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    idempotency_key = models.CharField(max_length=255, unique=True)
    order_id = models.UUIDField()
    status = models.CharField(max_length=16, choices=SandboxShipmentStatus.choices)
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "sagas_sandbox_shipment"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.id} ({self.status})"
