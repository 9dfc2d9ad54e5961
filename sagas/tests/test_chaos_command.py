"""saga_chaos on the embedded default, with stand-ins for the two interface
functions it needs that the contexts do not offer yet (place_order,
stock_levels): thin wrappers of the orders service and the catalog rows."""

import pytest
from django.core.management import call_command

from apps.orders import interface as orders
from apps.orders.services import order_place
from apps.products import interface as catalog
from sagas.tests.conftest import databases, stock

pytestmark = databases


@pytest.fixture
def interface_stand_ins(monkeypatch):
    monkeypatch.setattr(orders, "place_order", order_place, raising=False)
    monkeypatch.setattr(
        catalog,
        "stock_levels",
        lambda ids: {p: stock(p) for p in ids},
        raising=False,
    )


def test_chaos_run_keeps_every_invariant(
    inline, interface_stand_ins, product, customer, capsys
):
    for pid in ("a", "b", "c"):
        product(pid, stock=40)

    call_command(
        "saga_chaos", "--orders", "60", "--user-id", str(customer.id),
        "--products", "a,b,c", "--seed", "7", "--deadline", "60",
        "--decline-rate", "0.2", "--transient-rate", "0.2",
        "--ship-fail-rate", "0.1", "--charge-fail-rate", "0.05",
    )  # fmt: skip

    out = capsys.readouterr().out
    assert "FAIL" not in out
    assert out.count("OK ") == 4
