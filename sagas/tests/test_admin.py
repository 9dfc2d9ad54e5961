from datetime import timedelta

from django.utils import timezone

from sagas.models import Saga
from sagas.tests.conftest import databases

pytestmark = databases


def test_admin_lists_stuck_sagas_and_forces_compensation(
    inline, product, place, api_client, staff
):
    staff.is_superuser = True
    staff.save()
    product("widget", stock=10)
    order = place([("widget", 1)])
    saga = Saga.objects.get(order_id=order.id)
    Saga.objects.filter(pk=saga.pk).update(
        status="running", current_step=4,
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )  # fmt: skip
    api_client.force_login(staff)

    listing = api_client.get("/admin/sagas/saga/?stuck=yes")
    detail = api_client.get(f"/admin/sagas/saga/{saga.pk}/change/")
    api_client.post(
        "/admin/sagas/saga/",
        {"action": "force_compensation", "_selected_action": [str(saga.pk)]},
    )

    assert listing.status_code == 200 and str(order.id) in listing.content.decode()
    assert b"charge_payment" in detail.content
    saga.refresh_from_db()
    order.refresh_from_db()
    assert saga.status == "failed"
    assert (order.status, order.cancel_reason) == (
        "cancelled",
        "Cancelled by the shop",
    )


def test_the_saga_page_is_read_only_and_staff_without_rights_cannot_act(
    inline, product, place, api_client, make_user
):
    product("widget", stock=10)
    order = place([("widget", 1)])
    saga = Saga.objects.get(order_id=order.id)
    viewer = make_user(email="viewer@example.com", is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_saga"))
    api_client.force_login(viewer)

    detail = api_client.get(f"/admin/sagas/saga/{saga.pk}/change/")
    listing = api_client.get("/admin/sagas/saga/")

    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert b"force_compensation" not in listing.content
    api_client.post(
        "/admin/sagas/saga/",
        {"action": "force_compensation", "_selected_action": [str(saga.pk)]},
    )
    order.refresh_from_db()
    assert order.status == "confirmed"
