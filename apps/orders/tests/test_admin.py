import re

import pytest

from apps.orders import services
from apps.orders.models import Order, OutboxEvent

pytestmark = pytest.mark.django_db(databases=["default", "orders", "catalog"])

CHANGELIST = "/admin/orders/order/"


@pytest.fixture
def pending_order(customer, kettle):
    return services.order_place(user_id=customer.id, items=[("kettle", 2)])


def test_operator_sees_an_order_with_items_history_and_events(
    operator_client, pending_order
):
    services.order_confirm(order_id=pending_order.id)

    response = operator_client.get(f"{CHANGELIST}{pending_order.id}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Borealis Kettle" in page
    assert "<td>order.created</td>" in page
    assert "<td>order.confirmed</td>" in page
    # The history inline: who made each change.
    actors = re.findall(r'class="field-actor">\s*<p>(\w+)</p>', page)
    assert actors == ["customer", "system"]
    # Read-only: no form to save.
    assert 'name="_save"' not in page


def test_operator_filters_by_status_and_searches_by_user(
    operator_client, pending_order, make_user, kettle
):
    other = services.order_place(user_id=make_user().id, items=[("kettle", 1)])
    services.order_cancel(order_id=other.id, actor="system")

    cancelled = operator_client.get(CHANGELIST, {"status__exact": "cancelled"})
    by_user = operator_client.get(CHANGELIST, {"q": str(pending_order.user_id)})

    assert str(other.id) in cancelled.content.decode()
    assert str(pending_order.id) not in cancelled.content.decode()
    assert str(pending_order.id) in by_user.content.decode()
    assert str(other.id) not in by_user.content.decode()


def test_admin_cannot_add_or_delete_orders(operator_client, pending_order):
    assert operator_client.get(f"{CHANGELIST}add/").status_code == 403
    assert (
        operator_client.post(
            f"{CHANGELIST}{pending_order.id}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert Order.objects.count() == 1


def test_admin_actions_change_status_through_the_services(
    operator_client, pending_order
):
    services.order_confirm(order_id=pending_order.id)

    operator_client.post(
        CHANGELIST, {"action": "ship", "_selected_action": [str(pending_order.id)]}
    )

    pending_order.refresh_from_db()
    assert pending_order.status == "shipped"
    last = pending_order.history.order_by("created_at").last()
    assert last.actor == "staff:root@example.com"
    assert OutboxEvent.objects.filter(event_type="order.shipped").count() == 1


def test_an_illegal_admin_action_shows_the_current_status(
    operator_client, pending_order
):
    response = operator_client.post(
        CHANGELIST,
        {"action": "complete", "_selected_action": [str(pending_order.id)]},
        follow=True,
    )

    assert "The order is pending; it cannot become completed." in (
        response.content.decode()
    )
    pending_order.refresh_from_db()
    assert pending_order.status == "pending"


def test_the_order_page_links_to_its_saga(operator_client, pending_order):
    page = operator_client.get(f"{CHANGELIST}{pending_order.id}/change/")

    link = re.search(
        r'<a href="([^"]+)">Steps, attempts and errors</a>', page.content.decode()
    )
    assert link is not None
    assert link.group(1) == f"/admin/sagas/saga/?q={pending_order.id}"
    assert operator_client.get(link.group(1)).status_code == 200
