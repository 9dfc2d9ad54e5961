import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from apps.products.interface import (
    InsufficientStock,
    ReservationConflict,
    ReservationItem,
    ReservationNotFound,
    Shortage,
    commit_stock,
    release_stock,
    reserve_stock,
    return_stock,
)
from apps.products.models import Product, StockReservation

pytestmark = pytest.mark.django_db(databases=["default", "catalog"])


@pytest.fixture(params=["transaction", "no transaction"])
def engine_semantics(request, monkeypatch):
    """Run a test twice: as on PostgreSQL, and without transactions, as on
    MongoDB, where only the conditional updates and the reservation record
    keep stock right."""
    import contextlib

    from apps.products import db

    if request.param == "no transaction":
        monkeypatch.setattr(db, "atomic", contextlib.nullcontext)
    return request.param


def stock(product_id: str) -> int:
    return Product.objects.get(pk=product_id).stock


def test_reserve_takes_stock_for_every_item(make_product):
    make_product(id="a", stock=5)
    make_product(id="b", stock=2)

    reservation = reserve_stock(
        order_ref="o1",
        items=[
            ReservationItem("a", 2),
            ReservationItem("b", 2),
            ReservationItem("a", 1),
        ],
    )

    assert reservation.status == "active"
    assert reservation.items == (ReservationItem("a", 3), ReservationItem("b", 2))
    assert (stock("a"), stock("b")) == (2, 0)


def test_reserve_is_all_or_nothing_and_names_every_short_item(
    make_product, engine_semantics
):
    make_product(id="a", stock=5)
    make_product(id="b", stock=1)
    make_product(id="c", stock=0)

    with pytest.raises(InsufficientStock) as caught:
        reserve_stock(
            order_ref="o1",
            items=[
                ReservationItem("a", 2),
                ReservationItem("b", 3),
                ReservationItem("c", 1),
                ReservationItem("ghost", 1),
            ],
        )

    assert caught.value.shortages == (
        Shortage(product_id="b", requested=3, available=1),
        Shortage(product_id="c", requested=1, available=0),
        Shortage(product_id="ghost", requested=1, available=0),
    )
    assert (stock("a"), stock("b"), stock("c")) == (5, 1, 0)
    assert not StockReservation.objects.exists()


def test_shortages_reach_the_client_as_items_of_the_problem(make_product):
    from apps.core.problems import exception_handler

    make_product(id="a", stock=1)
    with pytest.raises(InsufficientStock) as caught:
        reserve_stock(order_ref="o1", items=[ReservationItem("a", 3)])

    body = exception_handler(caught.value, {}).data

    assert (body["status"], body["code"]) == (409, "insufficient_stock")
    assert body["items"] == [{"product_id": "a", "requested": 3, "available": 1}]


def test_reservation_status_is_typed_at_the_interface():
    import typing

    from apps.products.interface import ReservationDTO

    status = typing.get_type_hints(ReservationDTO)["status"]

    assert typing.get_origin(status) is typing.Literal
    assert {"pending", "active", "committed", "released", "failed"} <= set(
        typing.get_args(status)
    )


def test_archived_products_cannot_be_reserved(make_product):
    make_product(id="a", stock=5, is_archived=True)

    with pytest.raises(InsufficientStock):
        reserve_stock(order_ref="o1", items=[ReservationItem("a", 1)])
    assert stock("a") == 5


def test_reserve_is_idempotent_per_order_ref(make_product):
    make_product(id="a", stock=5)
    items = [ReservationItem("a", 2)]

    first = reserve_stock(order_ref="o1", items=items)
    again = reserve_stock(order_ref="o1", items=items)

    assert first == again
    assert stock("a") == 3


def test_same_order_ref_with_other_items_is_a_conflict(make_product):
    make_product(id="a", stock=5)
    reserve_stock(order_ref="o1", items=[ReservationItem("a", 2)])

    with pytest.raises(ReservationConflict):
        reserve_stock(order_ref="o1", items=[ReservationItem("a", 3)])
    assert stock("a") == 3


def test_failed_reservation_can_be_retried_once_stock_is_back(make_product):
    product = make_product(id="a", stock=1)
    with pytest.raises(InsufficientStock):
        reserve_stock(order_ref="o1", items=[ReservationItem("a", 2)])
    Product.objects.filter(pk=product.pk).update(stock=2)

    reservation = reserve_stock(order_ref="o1", items=[ReservationItem("a", 2)])

    assert reservation.status == "active"
    assert stock("a") == 0


def test_release_gives_stock_back_once(make_product, engine_semantics):
    make_product(id="a", stock=5)
    reserve_stock(order_ref="o1", items=[ReservationItem("a", 4)])

    first = release_stock(order_ref="o1")
    second = release_stock(order_ref="o1")

    assert first.status == second.status == "released"
    assert stock("a") == 5
    with pytest.raises(ReservationConflict):
        reserve_stock(order_ref="o1", items=[ReservationItem("a", 4)])


def test_release_of_unknown_reference_is_a_no_op():
    assert release_stock(order_ref="never-reserved") is None


def test_commit_sells_the_reservation_once(make_product):
    make_product(id="a", stock=5)
    reserve_stock(order_ref="o1", items=[ReservationItem("a", 2)])

    first = commit_stock(order_ref="o1")
    second = commit_stock(order_ref="o1")

    assert first.status == second.status == "committed"
    product = Product.objects.get(pk="a")
    assert (product.stock, product.sold_count) == (3, 2)
    with pytest.raises(ReservationConflict):
        release_stock(order_ref="o1")
    assert stock("a") == 3


def test_commit_of_unknown_or_released_reservation_fails(make_product):
    make_product(id="a", stock=5)
    reserve_stock(order_ref="o1", items=[ReservationItem("a", 2)])
    release_stock(order_ref="o1")

    with pytest.raises(ReservationNotFound):
        commit_stock(order_ref="nothing")
    with pytest.raises(ReservationConflict):
        commit_stock(order_ref="o1")
    assert Product.objects.get(pk="a").sold_count == 0


def test_periodic_task_releases_expired_reservations(make_product):
    from apps.products.tasks import reservations_release_expired_task

    make_product(id="a", stock=5)
    reserve_stock(order_ref="old", items=[ReservationItem("a", 2)], ttl_seconds=60)
    reserve_stock(order_ref="new", items=[ReservationItem("a", 1)], ttl_seconds=3600)
    StockReservation.objects.filter(order_ref="old").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    outcome = reservations_release_expired_task.apply().get()

    assert outcome == {"released": 1, "repaired": 0}
    statuses = dict(StockReservation.objects.values_list("order_ref", "status"))
    assert statuses == {"old": "released", "new": "active"}
    assert stock("a") == 4


def test_sweeper_repairs_a_reservation_interrupted_half_way(make_product):
    from apps.products.reservations import reservations_repair_interrupted

    make_product(id="a", stock=3)
    make_product(id="b", stock=3)
    # A crash after taking "a" but before "b": stock of "a" is held.
    Product.objects.filter(pk="a").update(stock=1)
    StockReservation.objects.create(
        order_ref="crashed",
        items=[{"product_id": "a", "quantity": 2}, {"product_id": "b", "quantity": 1}],
        product_ids=["a", "b"],
        applied=["a"],
        expires_at=timezone.now() + timedelta(minutes=15),
    )

    repaired = reservations_repair_interrupted(
        older_than=timedelta(0), now=timezone.now() + timedelta(seconds=1)
    )

    assert repaired == 1
    assert (stock("a"), stock("b")) == (3, 3)
    assert StockReservation.objects.get(order_ref="crashed").status == "failed"


@pytest.mark.django_db(databases=["default", "catalog"], transaction=True)
def test_concurrent_buyers_never_oversell(make_product, engine_semantics):
    """40 buyers race for 7 units (threads, each its own PostgreSQL
    connection): exactly 7 reservations succeed and stock ends at 0."""
    make_product(id="last-units", stock=7)
    make_product(id="other", stock=100)
    start = threading.Barrier(40)
    outcomes: list[str] = []
    lock = threading.Lock()

    def buy(n: int) -> None:
        items = [ReservationItem("last-units", 1)]
        if n % 2:
            items.append(ReservationItem("other", 1))
        try:
            start.wait(timeout=30)
            reserve_stock(order_ref=f"order-{n}", items=items)
            result = "ok"
        except InsufficientStock:
            result = "short"
        except Exception as exc:  # noqa: BLE001 - reported by the assertion
            result = repr(exc)
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(set(outcomes)) == ["ok", "short"], outcomes
    assert outcomes.count("ok") == 7
    assert stock("last-units") == 0
    active = StockReservation.objects.filter(status="active")
    assert active.count() == 7
    held_other = sum(
        item["quantity"]
        for r in active
        for item in r.items
        if item["product_id"] == "other"
    )
    assert stock("other") == 100 - held_other


@pytest.mark.django_db(databases=["default", "catalog"], transaction=True)
def test_a_real_worker_releases_expired_reservations(
    make_product, celery_worker_process
):
    import time

    from apps.products.tasks import reservations_release_expired_task

    make_product(id="a", stock=5)
    reserve_stock(order_ref="stale", items=[ReservationItem("a", 3)], ttl_seconds=60)
    StockReservation.objects.filter(order_ref="stale").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    reservations_release_expired_task.apply_async(queue=celery_worker_process)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if StockReservation.objects.get(order_ref="stale").status == "released":
            break
        time.sleep(0.1)
    assert StockReservation.objects.get(order_ref="stale").status == "released"
    assert stock("a") == 5


def test_return_gives_sold_stock_back_once(make_product, engine_semantics):
    make_product(id="a", stock=5)
    make_product(id="b", stock=5)
    items = [ReservationItem("a", 2), ReservationItem("b", 1)]
    reserve_stock(order_ref="o1", items=items)
    commit_stock(order_ref="o1")
    reserve_stock(order_ref="o2", items=[ReservationItem("a", 1)])
    commit_stock(order_ref="o2")

    first = return_stock(order_ref="o1")
    second = return_stock(order_ref="o1")

    assert first.status == second.status == "returned"
    assert first.items == (ReservationItem("a", 2), ReservationItem("b", 1))
    counts = dict(Product.objects.values_list("id", "stock"))
    sold = dict(Product.objects.values_list("id", "sold_count"))
    assert (counts, sold) == ({"a": 4, "b": 5}, {"a": 1, "b": 0})
    for call in (release_stock, commit_stock):
        with pytest.raises(ReservationConflict):
            call(order_ref="o1")
    with pytest.raises(ReservationConflict):
        reserve_stock(order_ref="o1", items=items)
    assert dict(Product.objects.values_list("id", "stock")) == counts


def test_only_a_sale_can_be_returned(make_product):
    make_product(id="a", stock=5)
    reserve_stock(order_ref="held", items=[ReservationItem("a", 2)])

    with pytest.raises(ReservationConflict) as caught:
        return_stock(order_ref="held")

    assert caught.value.data == {"reservation_status": "active"}
    assert return_stock(order_ref="never-reserved") is None
    assert (stock("a"), StockReservation.objects.get().status) == (3, "active")


# -- the reservation state machine ---------------------------------------------


def test_one_transition_table_covers_every_status():
    import typing

    from apps.products.interface import ReservationStatusName
    from apps.products.models import ReservationStatus
    from apps.products.reservations import TRANSITIONS

    assert set(TRANSITIONS) == set(ReservationStatus.values)
    assert set(typing.get_args(ReservationStatusName)) == set(ReservationStatus.values)
    for targets in TRANSITIONS.values():
        assert targets <= set(ReservationStatus.values)


def test_a_move_the_table_forbids_is_a_conflict_naming_the_status(make_product):
    from apps.products.reservations import transition

    make_product(id="a", stock=5)
    reserve_stock(order_ref="o1", items=[ReservationItem("a", 2)])
    commit_stock(order_ref="o1")
    reservation = StockReservation.objects.get(order_ref="o1")

    with pytest.raises(ReservationConflict) as caught:
        transition(reservation, "released")

    assert "is committed" in caught.value.detail
    assert caught.value.data == {"reservation_status": "committed"}
    assert StockReservation.objects.get(order_ref="o1").status == "committed"


def _interrupt_after_first_item(monkeypatch, interruption):
    """Run ``interruption`` (a concurrent call) once the maker of a
    reservation has taken its first item."""
    from apps.products import reservations

    take = reservations._take
    calls = []

    def take_then_interrupt(line):
        taken = take(line)
        if not calls:
            calls.append(line)
            interruption()
        return taken

    monkeypatch.setattr(reservations, "_take", take_then_interrupt)


def test_release_while_being_made_gives_every_item_back(
    make_product, engine_semantics, monkeypatch
):
    make_product(id="a", stock=5)
    make_product(id="b", stock=5)
    _interrupt_after_first_item(monkeypatch, lambda: release_stock(order_ref="o1"))

    with pytest.raises(ReservationConflict) as caught:
        reserve_stock(
            order_ref="o1", items=[ReservationItem("a", 2), ReservationItem("b", 3)]
        )

    assert caught.value.data == {"reservation_status": "released"}
    assert StockReservation.objects.get(order_ref="o1").status == "released"
    assert (stock("a"), stock("b")) == (5, 5)
    assert release_stock(order_ref="o1").status == "released"
    with pytest.raises(ReservationConflict):
        commit_stock(order_ref="o1")


def test_a_maker_that_loses_to_the_sweeper_gives_back_what_it_took_since(
    make_product, engine_semantics, monkeypatch
):
    from apps.products.reservations import reservations_repair_interrupted

    make_product(id="a", stock=5)
    make_product(id="b", stock=5)
    _interrupt_after_first_item(
        monkeypatch,
        lambda: reservations_repair_interrupted(
            older_than=timedelta(0), now=timezone.now() + timedelta(seconds=1)
        ),
    )

    with pytest.raises(ReservationConflict):
        reserve_stock(
            order_ref="o1", items=[ReservationItem("a", 2), ReservationItem("b", 3)]
        )

    assert StockReservation.objects.get(order_ref="o1").status == "failed"
    assert (stock("a"), stock("b")) == (5, 5)


def _half_made(order_ref: str) -> None:
    """A reservation whose maker took "a" and then died."""
    Product.objects.filter(pk="a").update(stock=1)
    StockReservation.objects.create(
        order_ref=order_ref,
        items=[{"product_id": "a", "quantity": 2}, {"product_id": "b", "quantity": 1}],
        product_ids=["a", "b"],
        applied=["a"],
        expires_at=timezone.now() + timedelta(minutes=15),
    )


def test_release_of_a_reservation_whose_maker_died_is_finished_by_the_sweeper(
    make_product, engine_semantics
):
    from apps.products.reservations import reservations_repair_interrupted

    make_product(id="a", stock=3)
    make_product(id="b", stock=3)
    _half_made("o1")

    first = release_stock(order_ref="o1")
    again = release_stock(order_ref="o1")
    repaired = reservations_repair_interrupted(
        older_than=timedelta(0), now=timezone.now() + timedelta(seconds=1)
    )

    assert first.status == again.status == "releasing"
    assert repaired == 1
    assert StockReservation.objects.get(order_ref="o1").status == "released"
    assert (stock("a"), stock("b")) == (3, 3)


def test_commit_of_a_reservation_being_made_is_a_conflict(make_product):
    make_product(id="a", stock=3)
    make_product(id="b", stock=3)
    _half_made("o1")

    with pytest.raises(ReservationConflict) as caught:
        commit_stock(order_ref="o1")

    assert caught.value.data == {"reservation_status": "pending"}
    assert Product.objects.get(pk="a").sold_count == 0


@pytest.mark.django_db(databases=["default", "catalog"], transaction=True)
def test_a_release_from_another_connection_sees_a_reservation_being_made(
    make_product, monkeypatch
):
    """On PostgreSQL too: the saga's compensation, on another connection,
    must find the reservation while its maker is still taking stock."""
    from apps.products import reservations

    make_product(id="a", stock=5)
    make_product(id="b", stock=5)
    first_taken, released = threading.Event(), threading.Event()
    take = reservations._take

    def take_slowly(line):
        taken = take(line)
        first_taken.set()
        assert released.wait(timeout=30)
        return taken

    monkeypatch.setattr(reservations, "_take", take_slowly)
    outcome = []

    def make() -> None:
        try:
            reserve_stock(
                order_ref="o1",
                items=[ReservationItem("a", 2), ReservationItem("b", 3)],
            )
            outcome.append("made")
        except ReservationConflict as exc:
            outcome.append(exc.data["reservation_status"])
        finally:
            connections.close_all()

    maker = threading.Thread(target=make)
    maker.start()
    assert first_taken.wait(timeout=30)
    release = release_stock(order_ref="o1")
    released.set()
    maker.join(timeout=30)

    assert release.status == "releasing"
    assert outcome == ["released"]
    assert StockReservation.objects.get(order_ref="o1").status == "released"
    assert (stock("a"), stock("b")) == (5, 5)


# -- every stock movement is a write of the product -------------------------


def _adjust(order_ref):
    from apps.products.services import stock_adjust

    stock_adjust(product_id="a", delta=-1, reason="damaged")


def _reserve(order_ref):
    reserve_stock(order_ref=order_ref, items=[ReservationItem("a", 1)])


def _sell(order_ref):
    _reserve(order_ref)
    _age_products()
    commit_stock(order_ref=order_ref)


def _release(order_ref):
    _reserve(order_ref)
    _age_products()
    release_stock(order_ref=order_ref)


def _return(order_ref):
    _sell(order_ref)
    _age_products()
    return_stock(order_ref=order_ref)


def _age_products():
    """Make every product look last written an hour ago."""
    Product.objects.update(updated_at=timezone.now() - timedelta(hours=1))


@pytest.mark.parametrize(
    "movement", [_adjust, _reserve, _release, _sell, _return], ids=lambda f: f.__name__
)
def test_a_stock_movement_bumps_updated_at_and_version(
    make_product, engine_semantics, movement
):
    make_product(id="a", stock=5)
    _age_products()
    before = Product.objects.get(pk="a")

    movement("o1")

    after = Product.objects.get(pk="a")
    assert after.updated_at > before.updated_at + timedelta(minutes=59)
    assert after.version > before.version
