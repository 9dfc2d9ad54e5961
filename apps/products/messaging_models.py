"""The inventory consumer's inbox (alias ``catalog``)."""

from apps.core.messaging.models import InboxEntryBase


class InboxEntry(InboxEntryBase):
    """An order event applied by the inventory consumer."""

    class Meta(InboxEntryBase.Meta):
        db_table = "products_inbox"
        verbose_name_plural = "inbox entries"
