"""Place many orders with failures injected at every step, wait for their
sagas, and check the invariants; exit non-zero when one breaks.

Failures: declines, transient provider errors and shipping refusals through
the sandbox test tokens; stock shortages by ordering more than the products
hold. Works on whatever runs the sagas (inline, or real workers).

Needs from the contexts' interfaces: ``apps.orders.interface.place_order``
and ``apps.products.interface.stock_levels``.
"""

import random
import time
from collections import Counter
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError

from apps.orders import interface as orders
from apps.products import interface as catalog
from sagas.models import Saga, SandboxCharge, SandboxShipment


class Command(BaseCommand):
    help = "Randomised create-order saga run that checks its invariants."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=500)
        parser.add_argument("--user-id", required=True, help="an active customer")
        parser.add_argument(
            "--products", required=True, help="comma-separated product ids"
        )
        parser.add_argument("--decline-rate", type=float, default=0.1)
        parser.add_argument("--transient-rate", type=float, default=0.2)
        parser.add_argument("--ship-fail-rate", type=float, default=0.05)
        parser.add_argument("--charge-fail-rate", type=float, default=0.02)
        parser.add_argument("--max-quantity", type=int, default=3)
        parser.add_argument("--deadline", type=float, default=300.0, help="seconds")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **opts):
        place, levels = orders.place_order, catalog.stock_levels
        rng = random.Random(opts["seed"])  # noqa: S311 - test data, not secrets
        product_ids = [p for p in opts["products"].split(",") if p]
        user_id = UUID(opts["user_id"])
        initial = {p: _units(v) for p, v in levels(product_ids).items()}

        placed, refused = [], 0
        for _ in range(opts["orders"]):
            items = [
                (p, rng.randint(1, opts["max_quantity"]))
                for p in rng.sample(product_ids, rng.randint(1, len(product_ids)))
            ]
            try:
                order = place(
                    user_id=user_id, items=items, payment_method=_token(rng, opts)
                )
            except orders.InsufficientStock:
                refused += 1  # short at placement: no saga
                continue
            placed.append(order.id)

        deadline = time.monotonic() + opts["deadline"]
        statuses: dict = {}
        while time.monotonic() < deadline:
            statuses = {o: orders.get_order(o).status for o in placed}
            if all(s in ("confirmed", "cancelled") for s in statuses.values()):
                break
            time.sleep(0.5)

        confirmed = {str(o) for o, s in statuses.items() if s == "confirmed"}
        sagas = dict(
            Saga.objects.filter(order_id__in=placed).values_list("id", "order_id")
        )
        run_keys = {f"saga:{saga_id}:charge_payment": o for saga_id, o in sagas.items()}
        checks = {
            "every order CONFIRMED or CANCELLED within the deadline": all(
                s in ("confirmed", "cancelled") for s in statuses.values()
            ),
            "stock conserved (available + reserved + sold = initial)": all(
                _units(v) == initial[p] for p, v in levels(product_ids).items()
            ),
            "every captured charge belongs to a confirmed order or was refunded": all(
                str(run_keys[c.idempotency_key]) in confirmed
                for c in SandboxCharge.objects.filter(
                    status="captured", idempotency_key__in=run_keys
                )
            ),
            "every shipment belongs to a confirmed order or was cancelled": all(
                str(s.order_id) in confirmed
                for s in SandboxShipment.objects.filter(
                    status="created", order_id__in=placed
                )
            ),
        }
        self.stdout.write(
            f"orders placed {len(placed)}, refused at placement {refused}, "
            f"outcomes {dict(Counter(statuses.values()))}"
        )
        for name, ok in checks.items():
            self.stdout.write(f"{'OK  ' if ok else 'FAIL'} {name}")
        if not all(checks.values()):
            raise CommandError("An invariant broke.")


def _token(rng, opts) -> str:
    draw = rng.random()
    for token, rate in (
        ("tok_decline", opts["decline_rate"]),
        ("tok_transient_2", opts["transient_rate"]),
        ("tok_ship_fail", opts["ship_fail_rate"]),
        ("tok_charge_then_fail", opts["charge_fail_rate"]),
    ):
        if draw < rate:
            return token
        draw -= rate
    return ""


def _units(level) -> int:
    return level.available + level.held + level.sold
