"""The catalog's concurrency branches, with real threads on PostgreSQL (each
thread its own connection, closed when it ends). Each race is forced into
its dangerous interleaving, so the branch runs every time."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from apps.products import reservations, search, services
from apps.products.interface import (
    InsufficientStock,
    ReservationConflict,
    ReservationItem,
    commit_stock,
    reserve_stock,
)
from apps.products.models import Product, StockReservation

pytestmark = pytest.mark.django_db(databases=["default", "catalog"], transaction=True)

TIMEOUT = 30


def _run(*targets):
    """Run each target in a thread of its own; return what each returned
    or raised, in order."""
    outcomes = [None] * len(targets)

    def run(index, target):
        try:
            outcomes[index] = target()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT * 2)
        assert not thread.is_alive()
    return outcomes


def _stock(product_id):
    return Product.objects.values_list("stock", "sold_count").get(pk=product_id)


def test_two_updates_without_if_match_lose_nothing(
    make_product, staff, auth_client, monkeypatch
):
    """Both PATCHes read version 1 before either writes: the first write
    wins, the second is a 412 with nothing changed (not a silent
    overwrite of the first)."""
    make_product(id="kettle", name="Kettle", price="10.00")
    both_read = threading.Barrier(2, timeout=TIMEOUT)
    clean = services.full_clean

    def clean_after_both_read(product, **kwargs):
        both_read.wait()
        return clean(product, **kwargs)

    monkeypatch.setattr(services, "full_clean", clean_after_both_read)
    token = auth_client(staff).tokens["access"]

    def patch(change):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return lambda: client.patch("/api/v1/products/kettle", change, format="json")

    responses = _run(patch({"name": "Steel Kettle"}), patch({"price": "12.00"}))

    assert sorted(r.status_code for r in responses) == [200, 412]
    (lost,) = [r for r in responses if r.status_code == 412]
    (won,) = [r for r in responses if r.status_code == 200]
    assert lost.json()["code"] == "precondition_failed"
    kettle = Product.objects.get(pk="kettle")
    assert kettle.version == 2
    assert (kettle.name, f"{kettle.price}") == (
        won.json()["name"],
        won.json()["price"],
    )
    assert (kettle.name == "Steel Kettle") != (f"{kettle.price}" == "12.00")


def test_a_delete_racing_a_reservation_neither_loses_nor_creates_stock(
    make_product, monkeypatch
):
    """The delete has found no open reservation when a reservation takes
    stock: the delete is a 409 and the reservation keeps its stock."""
    make_product(id="kettle", stock=5)
    checked, reserved = threading.Event(), threading.Event()
    contains = services.json_list_contains

    def check_then_wait(*args, **kwargs):
        # The delete's check, answered as it stood before the reservation.
        found = contains(*args, **kwargs)
        answer = found if found.exists() else found.none()
        checked.set()
        assert reserved.wait(TIMEOUT)
        return answer

    monkeypatch.setattr(services, "json_list_contains", check_then_wait)

    def delete():
        services.product_delete(product_id="kettle")
        return "deleted"

    def reserve():
        assert checked.wait(TIMEOUT)
        try:
            return reserve_stock(order_ref="o1", items=[ReservationItem("kettle", 2)])
        finally:
            reserved.set()

    deleted, reservation = _run(delete, reserve)

    assert reservation.status == "active"
    assert getattr(deleted, "code", deleted) == "product_conflict"
    assert _stock("kettle") == (3, 0)


def test_a_reservation_after_a_delete_is_short_and_takes_nothing(make_product):
    make_product(id="kettle", stock=5)

    (deleted,) = _run(lambda: services.product_delete(product_id="kettle"))
    (short,) = _run(
        lambda: reserve_stock(order_ref="o1", items=[ReservationItem("kettle", 2)])
    )

    assert deleted is None
    assert isinstance(short, InsufficientStock)
    assert not Product.objects.filter(pk="kettle").exists()
    assert not StockReservation.objects.exists()


def test_the_sweeper_racing_a_sale_lets_exactly_one_win(make_product, monkeypatch):
    """An expired reservation is released by the sweeper while its order
    commits it: both read it active, one moves it, the other loses. Stock
    is sold once or given back once, never both."""
    make_product(id="kettle", stock=5)
    reserve_stock(order_ref="o1", items=[ReservationItem("kettle", 2)])
    StockReservation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    both_read = threading.Barrier(2, timeout=TIMEOUT)
    transition = reservations.transition

    def transition_after_both_read(reservation, to):
        if to in ("committed", "released") and reservation.status == "active":
            both_read.wait()
        return transition(reservation, to)

    monkeypatch.setattr(reservations, "transition", transition_after_both_read)

    swept, sold = _run(
        lambda: reservations.reservations_release_expired(),
        lambda: commit_stock(order_ref="o1"),
    )

    status = StockReservation.objects.get(order_ref="o1").status
    if status == "committed":
        assert swept == 0
        assert sold.status == "committed"
        assert _stock("kettle") == (3, 2)
    else:
        assert status == "released"
        assert swept == 1
        assert isinstance(sold, ReservationConflict)
        assert sold.data == {"reservation_status": "released"}
        assert _stock("kettle") == (5, 0)


def test_a_reservation_interrupted_half_way_is_repaired_by_the_sweeper(
    make_product, monkeypatch
):
    """The maker's worker dies after taking the first item (its thread
    ends on an error, its connection closed): the record says what it
    took, and the sweeper, on another connection, gives exactly that back."""
    make_product(id="a", stock=5)
    make_product(id="b", stock=5)
    take = reservations._take

    def take_then_die(line):
        if line["product_id"] == "b":
            raise ConnectionError("worker lost")
        return take(line)

    monkeypatch.setattr(reservations, "_take", take_then_die)

    (crashed,) = _run(
        lambda: reserve_stock(
            order_ref="o1", items=[ReservationItem("a", 2), ReservationItem("b", 3)]
        )
    )
    half_made = StockReservation.objects.get(order_ref="o1")
    assert isinstance(crashed, ConnectionError)
    assert (half_made.status, half_made.applied) == ("pending", ["a"])
    assert (_stock("a"), _stock("b")) == ((3, 0), (5, 0))

    (repaired,) = _run(
        lambda: reservations.reservations_repair_interrupted(
            older_than=timedelta(0), now=timezone.now() + timedelta(seconds=1)
        )
    )

    assert repaired == 1
    assert StockReservation.objects.get(order_ref="o1").status == "failed"
    assert (_stock("a"), _stock("b")) == ((5, 0), (5, 0))


def _waits_for_a_lock(table: str, mode: str) -> bool:
    """Whether another session waits for a ``mode`` lock on ``table``,
    polled until TIMEOUT (pg_locks: pg_stat_activity would answer from one
    snapshot per transaction)."""
    deadline = time.monotonic() + TIMEOUT
    with connections["catalog"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted"
                " AND relation = %s::regclass AND mode = %s",
                (table, mode),
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.01)
    return False


def test_a_prune_keeps_a_word_that_a_write_in_flight_brings_back(make_product):
    """The prune finds "lamp" on no product while a product with it is
    being created: it waits for that write and keeps the word, which the
    product's prefix search needs."""
    make_product(id="old", name="Zeppelin Lamp", category="Misc")
    Product.objects.filter(pk="old").delete()
    written = threading.Event()

    def create():
        with transaction.atomic(using="catalog"):
            make_product(id="new", name="Desk Lamp", category="Home")
            written.set()
            assert _waits_for_a_lock("products_product", "ShareLock")
        return "created"

    def prune():
        assert written.wait(TIMEOUT)
        return search.search_words_prune()

    created, pruned = _run(create, prune)

    assert created == "created"
    assert pruned == 2  # "zeppelin", and "misc", the old product's category
    found = APIClient().get("/api/v1/products/search?q=lam").json()
    assert [p["id"] for p in found["results"]] == ["new"]


def test_a_prune_gives_up_rather_than_queue_writes_behind_a_long_transaction(
    make_product,
):
    """A transaction that holds the products table past the prune's lock
    timeout: the prune gives up (every write would otherwise wait behind
    its lock request) and the next run prunes."""
    make_product(id="old", name="Zeppelin Lamp", category="Misc")
    Product.objects.filter(pk="old").delete()
    holding, done = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic(using="catalog"):
            make_product(id="new", name="Desk Lamp", category="Home")
            holding.set()
            assert done.wait(TIMEOUT)
        return "held"

    def prune():
        assert holding.wait(TIMEOUT)
        try:
            return search.search_words_prune()
        finally:
            done.set()

    held, pruned = _run(hold, prune)

    assert held == "held"
    assert pruned == 0
    assert search.search_words_prune() == 2  # the table is free again
