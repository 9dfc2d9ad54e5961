"""The notification consumer: e-mails the customer at each status change.

Runs inside the inbox transaction (apps.core.messaging.consumers): the
e-mail is sent, then the Notification row and the inbox entry commit
together. An SMTP failure raises, rolls back, and the event is retried; a
crash after sending and before the commit is the one case that sends an
e-mail twice.
"""

from uuid import UUID

from django.core.mail import send_mail

from apps.core.messaging.consumers import Event
from apps.orders.messaging_models import Notification
from apps.users.interface import UserNotFound, get_user

_SUBJECTS = {
    "order.created": "We have your order {ref}",
    "order.confirmed": "Your order {ref} is confirmed",
    "order.shipped": "Your order {ref} is on its way",
    "order.completed": "Your order {ref} is complete",
    "order.cancelled": "Your order {ref} was cancelled",
}


def notification_handle(event: Event) -> None:
    subject_template = _SUBJECTS.get(event.event_type)
    if subject_template is None:
        return
    order = event.data["order"]
    try:
        user = get_user(UUID(order["user_id"]))
    except UserNotFound:
        return  # the account is gone: nobody to tell
    ref = order["id"][:8].upper()
    subject = subject_template.format(ref=ref)
    send_mail(
        subject,
        _body(event, user.name, ref),
        None,
        [user.email],
        fail_silently=False,
    )
    Notification.objects.create(
        event_id=event.event_id,
        order_id=UUID(order["id"]),
        event_type=event.event_type,
        recipient=user.email,
        subject=subject,
    )


def _body(event: Event, name: str, ref: str) -> str:
    order = event.data["order"]
    lines = [f"Hello {name},", ""]
    status = order["status"]
    lines.append(f"Order {ref} is now {status}.")
    if event.data.get("reason"):
        lines.append(f"Reason: {event.data['reason']}")
    lines.append("")
    for item in order["items"]:
        lines.append(f"  {item['quantity']} x {item['name']} at {item['unit_price']}")
    lines += ["", f"Total: {order['total_amount']}", "", f"Order id: {order['id']}"]
    return "\n".join(lines)
