"""Place many orders with failures injected at every step, wait for their
sagas, and check the invariants; exit non-zero when one breaks.

Works on whatever runs the sagas: inline (the embedded default), or the
relay and real workers of a deployment. The run and its checks are
``sagas.chaos``; give it products of its own (its stock checks count every
unit of them).
"""

from uuid import UUID

from django.core.management.base import BaseCommand, CommandError

from sagas.chaos import ChaosOptions, chaos_run


class Command(BaseCommand):
    help = "Randomised create-order saga run that checks its invariants."

    def add_arguments(self, parser):
        defaults = ChaosOptions()
        parser.add_argument(
            "--orders",
            type=int,
            default=defaults.orders,
            help="orders to place (attempts short at placement do not count)",
        )
        parser.add_argument("--user-id", required=True, help="an active customer")
        parser.add_argument(
            "--products", required=True, help="comma-separated product ids"
        )
        for rate in (
            "decline_rate",
            "transient_rate",
            "timeout_rate",
            "charge_fail_rate",
            "ship_fail_rate",
            "cancel_rate",
        ):
            parser.add_argument(
                f"--{rate.replace('_', '-')}",
                type=float,
                default=getattr(defaults, rate),
            )
        parser.add_argument("--max-quantity", type=int, default=defaults.max_quantity)
        parser.add_argument(
            "--deadline",
            type=float,
            default=defaults.deadline,
            help="seconds for the orders to settle once all are placed",
        )
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **opts):
        options = ChaosOptions(
            orders=opts["orders"],
            decline_rate=opts["decline_rate"],
            transient_rate=opts["transient_rate"],
            timeout_rate=opts["timeout_rate"],
            charge_fail_rate=opts["charge_fail_rate"],
            ship_fail_rate=opts["ship_fail_rate"],
            cancel_rate=opts["cancel_rate"],
            max_quantity=opts["max_quantity"],
            deadline=opts["deadline"],
            seed=opts["seed"],
        )
        report = chaos_run(
            user_id=UUID(opts["user_id"]),
            product_ids=[p for p in opts["products"].split(",") if p],
            options=options,
        )
        for line in report.lines():
            self.stdout.write(line)
        if not report.ok:
            raise CommandError("An invariant broke.")
