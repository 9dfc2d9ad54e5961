"""The orders context's outbox and its consumers' inbox (alias ``orders``)."""

import uuid

from django.db import models
from django.utils import timezone

from apps.core.messaging.models import InboxEntryBase, OutboxEventBase


class OutboxEvent(OutboxEventBase):
    """An order event waiting for (or done with) the relay."""

    class Meta(OutboxEventBase.Meta):
        db_table = "orders_outbox"
        verbose_name = "outbox event"


class InboxEntry(InboxEntryBase):
    """An event applied by a consumer of this context (notification)."""

    class Meta(InboxEntryBase.Meta):
        db_table = "orders_inbox"
        verbose_name_plural = "inbox entries"


class Notification(models.Model):
    """An e-mail sent to a customer about their order (one per event)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_id = models.UUIDField(unique=True)
    order_id = models.UUIDField(db_index=True)
    event_type = models.CharField(max_length=64)
    recipient = models.EmailField()
    subject = models.CharField(max_length=200)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "orders_notification"
        ordering = ["-sent_at"]

    def __str__(self):
        return f"{self.subject} -> {self.recipient}"
