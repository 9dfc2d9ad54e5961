"""A randomised create-order run and the invariants it must keep.

Shared by ``manage.py saga_chaos`` (operators checking a deployment) and
the test on real workers. Orders are placed through the orders interface
with failures injected at every step; the run waits until every order has
settled, then checks what really happened in the orders, the catalog's
stock levels and the sandbox providers' own records.

Failures injected, by the order's payment method (sandbox test tokens) and
its quantities:

- reserve: stock shortages, by ordering more than the products hold (an
  order already short at placement is refused and has no saga);
- charge: declines, transient provider errors (twice, then success),
  timeouts, and charges taken whose answer is an error;
- shipment: the shipping provider refuses the order;
- customer cancels while the sagas run, of pending and confirmed orders.

The invariants assume the run has its products to itself.
"""

import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from uuid import UUID

from django.utils import timezone

from apps.orders import interface as orders
from apps.products import interface as catalog
from sagas.models import (
    Saga,
    SagaStatus,
    SandboxCharge,
    SandboxChargeStatus,
    SandboxShipment,
    SandboxShipmentStatus,
)

CUSTOMER_CANCEL_REASON = "Changed my mind"
# How many of the latest orders a customer's cancel picks from: recent
# ones, so that most cancels meet a saga still running.
CANCEL_WINDOW = 10
POLL_SECONDS = 0.2
MAX_ATTEMPTS_PER_ORDER = 3

# The order status each finished saga leaves behind.
SETTLED = {
    SagaStatus.COMPLETED: "confirmed",
    SagaStatus.FAILED: "cancelled",
}


@dataclass(frozen=True)
class ChaosOptions:
    # Orders to place (attempts refused for short stock do not count).
    orders: int = 500
    decline_rate: float = 0.1
    transient_rate: float = 0.2
    timeout_rate: float = 0.0
    charge_fail_rate: float = 0.02
    ship_fail_rate: float = 0.05
    # Per order placed: the chance that a customer then cancels a recent one.
    cancel_rate: float = 0.02
    max_quantity: int = 3
    # Seconds the sagas have, once every order is placed, to settle them.
    deadline: float = 300.0
    seed: int | None = None

    def token(self, draw: float) -> str:
        """The payment method for a uniform ``draw`` in [0, 1)."""
        for token, rate in (
            ("tok_decline", self.decline_rate),
            ("tok_transient_2", self.transient_rate),
            ("tok_timeout", self.timeout_rate),
            ("tok_charge_then_fail", self.charge_fail_rate),
            ("tok_ship_fail", self.ship_fail_rate),
        ):
            if draw < rate:
                return token
            draw -= rate
        return ""  # the sandbox's default method: the charge succeeds


@dataclass(frozen=True)
class Invariant:
    name: str
    # What breaks it (orders, charges, products), empty when it holds.
    offenders: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.offenders


@dataclass(frozen=True)
class ChaosReport:
    placed: int
    refused: int  # short at placement: no saga
    customer_cancels: int
    outcomes: dict[str, int]  # order status -> orders
    cancel_reasons: dict[str, int]  # why cancelled orders were -> orders
    settle_seconds: float  # from the last placement until all settled
    invariants: tuple[Invariant, ...]

    @property
    def ok(self) -> bool:
        return all(invariant.ok for invariant in self.invariants)

    def lines(self) -> list[str]:
        """The report as an operator reads it."""
        reasons = ", ".join(
            f"{reason} {count}" for reason, count in sorted(self.cancel_reasons.items())
        )
        lines = [
            f"orders placed {self.placed}, refused at placement {self.refused}, "
            f"cancelled by the customer {self.customer_cancels}",
            f"outcomes {self.outcomes}; cancelled because: {reasons or '-'}",
            f"settled {self.settle_seconds:.1f} s after the last placement",
        ]
        for invariant in self.invariants:
            lines.append(f"{'OK  ' if invariant.ok else 'FAIL'} {invariant.name}")
            if not invariant.ok:
                shown = ", ".join(invariant.offenders[:5])
                more = len(invariant.offenders) - 5
                lines.append(f"     {shown}{f' and {more} more' if more > 0 else ''}")
        return lines


def chaos_run(
    *, user_id: UUID, product_ids: list[str], options: ChaosOptions
) -> ChaosReport:
    """Place ``options.orders`` orders of ``user_id`` for ``product_ids``
    (fewer if the stock runs out for good) with failures injected, wait
    for them to settle (at most ``options.deadline`` seconds after the last
    one), check the invariants."""
    rng = random.Random(options.seed)  # noqa: S311 - test data, not secrets
    initial = {
        p: _units(level) for p, level in catalog.stock_levels(product_ids).items()
    }
    started_at = timezone.now()
    placed, refused, cancels = _place(rng, user_id, product_ids, options)
    settle_from = time.monotonic()
    _wait_settled(placed, deadline=settle_from + options.deadline)
    settle_seconds = time.monotonic() - settle_from
    final = {order_id: orders.get_order(order_id) for order_id in placed}
    cancelled = [o for o in final.values() if o.status == "cancelled"]
    return ChaosReport(
        placed=len(placed),
        refused=refused,
        customer_cancels=cancels,
        outcomes=dict(Counter(o.status for o in final.values())),
        cancel_reasons=dict(
            Counter(o.cancel_reason.partition(":")[0] for o in cancelled)
        ),
        settle_seconds=settle_seconds,
        invariants=chaos_invariants(
            final=final, product_ids=product_ids, initial=initial, since=started_at
        ),
    )


def _place(rng, user_id, product_ids, options) -> tuple[list[UUID], int, int]:
    placed: list[UUID] = []
    refused = cancels = 0
    # Orders short at placement do not count; once the stock is gone they
    # all are, so the attempts have a cap.
    for _ in range(options.orders * MAX_ATTEMPTS_PER_ORDER):
        if len(placed) == options.orders:
            break
        # Every draw is made whatever happens, so a seed always makes the
        # same requests.
        chosen = rng.sample(product_ids, rng.randint(1, len(product_ids)))
        items = [(p, rng.randint(1, options.max_quantity)) for p in chosen]
        token = options.token(rng.random())
        cancel = rng.random() < options.cancel_rate
        victim = rng.randrange(CANCEL_WINDOW)
        try:
            order = orders.place_order(
                user_id=user_id, items=items, payment_method=token
            )
        except orders.InsufficientStock:
            refused += 1
        else:
            placed.append(order.id)
        if cancel and placed:
            recent = placed[-CANCEL_WINDOW:]
            try:
                orders.cancel_order(
                    order_id=recent[victim % len(recent)],
                    reason=CUSTOMER_CANCEL_REASON,
                    actor="customer",
                )
            except orders.IllegalTransition:
                continue  # cancelled already: its saga failed, or a repeat
            cancels += 1
    return placed, refused, cancels


def _wait_settled(placed: list[UUID], *, deadline: float) -> None:
    """Until ``deadline``: wait for every order's saga to finish and the
    order to show it (a customer's cancel of a confirmed order is still on
    its way while its saga shows completed)."""
    waiting = set(placed)
    while waiting and time.monotonic() < deadline:
        finished = Saga.objects.filter(
            order_id__in=waiting, status__in=list(SETTLED)
        ).values_list("order_id", "status")
        for order_id, status in finished:
            if orders.get_order(order_id).status == SETTLED[status]:
                waiting.discard(order_id)
        if waiting:
            time.sleep(POLL_SECONDS)


def chaos_invariants(
    *,
    final: dict[UUID, orders.OrderDTO],
    product_ids: list[str],
    initial: dict[str, int],
    since,
) -> tuple[Invariant, ...]:
    """Check a run: ``final`` has its orders as they ended, ``initial`` the
    units of each product before it (available + held + sold), ``since``
    when it started (the sandbox's records made after it count)."""
    confirmed = {o for o, order in final.items() if order.status == "confirmed"}
    sagas = {
        saga_id: (order_id, status)
        for saga_id, order_id, status in Saga.objects.filter(
            order_id__in=list(final)
        ).values_list("id", "order_id", "status")
    }
    saga_status = {order_id: status for order_id, status in sagas.values()}

    # Every charge made under one of the run's sagas' keys ("saga:<id>:...").
    charges = defaultdict(list)
    for charge in SandboxCharge.objects.filter(
        created_at__gte=since, idempotency_key__startswith="saga:"
    ):
        saga_id = charge.idempotency_key.split(":")[1]
        owner = sagas.get(_uuid(saga_id))
        if owner is not None:
            charges[owner[0]].append(charge)
    shipments = defaultdict(list)
    for shipment in SandboxShipment.objects.filter(order_id__in=list(final)):
        shipments[shipment.order_id].append(shipment)

    levels = catalog.stock_levels(product_ids)
    captured = SandboxChargeStatus.CAPTURED
    booked = SandboxShipmentStatus.CREATED
    return (
        Invariant(
            "every order CONFIRMED or CANCELLED within the deadline",
            tuple(
                f"order {o} {order.status}"
                for o, order in final.items()
                if order.status not in ("confirmed", "cancelled")
            ),
        ),
        Invariant(
            "every saga finished: completed if its order is confirmed, "
            "compensated if cancelled",
            tuple(
                f"order {o} {order.status}, saga {saga_status.get(o, 'missing')}"
                for o, order in final.items()
                if SETTLED.get(saga_status.get(o)) != order.status
            ),
        ),
        Invariant(
            "stock conserved (available + held + sold = initial)",
            tuple(
                f"{p}: {level.available} + {level.held} + {level.sold} != {initial[p]}"
                for p, level in levels.items()
                if _units(level) != initial[p]
            ),
        ),
        Invariant(
            "no stock held once every order settled",
            tuple(
                f"{p}: {level.held} held" for p, level in levels.items() if level.held
            ),
        ),
        Invariant(
            "every captured charge belongs to a confirmed order or was refunded",
            tuple(
                f"charge {c.id} of {final[o].status} order {o}"
                for o, made in charges.items()
                for c in made
                if c.status == captured and o not in confirmed
            ),
        ),
        Invariant(
            "no order charged twice",
            tuple(
                f"order {o}: {len(made)} charges"
                for o, made in charges.items()
                if len(made) > 1
            ),
        ),
        Invariant(
            "every shipment belongs to a confirmed order or was cancelled",
            tuple(
                f"shipment {s.id} of {final[o].status} order {o}"
                for o, booked_for in shipments.items()
                for s in booked_for
                if s.status == booked and o not in confirmed
            ),
        ),
        Invariant(
            "every confirmed order paid in full (one charge) and shipped once",
            tuple(_unpaid_or_unshipped(final, confirmed, charges, shipments)),
        ),
    )


def _unpaid_or_unshipped(final, confirmed, charges, shipments):
    for o in confirmed:
        paid = [
            c.amount for c in charges[o] if c.status == SandboxChargeStatus.CAPTURED
        ]
        booked = sum(s.status == SandboxShipmentStatus.CREATED for s in shipments[o])
        if paid != [final[o].total_amount] or booked != 1:
            yield (
                f"order {o}: paid {[str(a) for a in paid]} of "
                f"{final[o].total_amount}, shipments {booked}"
            )


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def _units(level) -> int:
    return level.available + level.held + level.sold
