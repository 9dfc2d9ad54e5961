"""saga_chaos on the embedded default: random failures at every step, and
the invariants it checks hold."""

from django.core.management import call_command

from sagas.tests.conftest import databases

pytestmark = databases


def test_chaos_run_keeps_every_invariant(inline, product, customer, capsys):
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
    assert out.count("OK ") == 8
