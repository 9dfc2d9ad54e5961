"""Sandbox payment and shipping providers: a real provider's test mode.

They keep their own records (SandboxCharge, SandboxRefund, SandboxShipment
in the orders database) so that tests and operators see what really
happened. The order's payment method (a test token) drives them:

==========================  ===============================================
token                       behaviour
==========================  ===============================================
``""`` or ``tok_visa``      the charge succeeds (the default test method)
``tok_decline``             the card is declined (permanent; nothing taken)
``tok_transient``           the provider fails transiently 5 times per
                            charge, then succeeds; ``tok_transient_<n>``
                            fails n times
``tok_timeout``             every charge attempt is slower than the call
                            timeout (nothing is taken)
``tok_charge_then_fail``    the money is taken, then every answer is an
                            error: the saga must not charge twice, and
                            must refund
``tok_slow``                the money is taken, the answer comes after
                            SAGA_SANDBOX_SLOW_SECONDS (3 s): a worker can
                            be killed mid-step
``tok_ship_fail``           payment succeeds; the shipping provider refuses
                            the shipment (permanent)
==========================  ===============================================
"""

import time
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, router, transaction
from django.utils import timezone

from apps.gateway.interface import CallTimeout
from sagas.models import (
    SandboxCharge,
    SandboxChargeStatus,
    SandboxRefund,
    SandboxShipment,
    SandboxShipmentStatus,
)
from sagas.providers import (
    Charge,
    ProviderError,
    ProviderUnavailable,
    Refund,
    Shipment,
)

DEFAULT_TOKEN = "tok_visa"
DEFAULT_TRANSIENT_FAILURES = 5


def _charge_dto(charge: SandboxCharge) -> Charge:
    return Charge(id=charge.id, amount=charge.amount, status=charge.status)


def _transient_failures(token: str) -> int:
    if token == "tok_transient":
        return DEFAULT_TRANSIENT_FAILURES
    _, _, count = token.partition("tok_transient_")
    return int(count) if count.isdigit() else 0


def _fails_again(key: str, failures: int) -> bool:
    """Whether this call is one of the first ``failures`` for ``key``
    (counted in the cache, so across processes when it is Redis)."""
    counter = f"sandbox:transient:{key}"
    cache.add(counter, 0, timeout=3600)
    return cache.incr(counter) <= failures


class SandboxPaymentProvider:
    def charge(
        self, *, idempotency_key: str, amount: Decimal, token: str, timeout: float
    ) -> Charge:
        token = token or DEFAULT_TOKEN
        existing = SandboxCharge.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            if token == "tok_decline":
                raise ProviderError("Your card was declined.", code="card_declined")
            if token == "tok_timeout":
                time.sleep(timeout)
                raise CallTimeout(f"sandbox payment: no answer within {timeout} s")
            failures = _transient_failures(token)
            if failures and _fails_again(idempotency_key, failures):
                raise ProviderUnavailable("sandbox payment: 503 Service Unavailable")
            existing = self._create(idempotency_key, amount, token)
        if existing.token == "tok_charge_then_fail":
            raise ProviderUnavailable("sandbox payment: 500 after capture")
        if existing.token == "tok_slow":
            delay = float(getattr(settings, "SAGA_SANDBOX_SLOW_SECONDS", 3.0))
            time.sleep(min(delay, timeout))
            if delay > timeout:
                raise CallTimeout(f"sandbox payment: no answer within {timeout} s")
        return _charge_dto(existing)

    def _create(self, key: str, amount: Decimal, token: str) -> SandboxCharge:
        try:
            with transaction.atomic(using=router.db_for_write(SandboxCharge)):
                return SandboxCharge.objects.create(
                    id=f"ch_{uuid.uuid4().hex[:24]}",
                    idempotency_key=key,
                    amount=amount,
                    token=token,
                    status=SandboxChargeStatus.CAPTURED,
                )
        except IntegrityError:
            # The same key, concurrently: one charge, as a provider does.
            return SandboxCharge.objects.get(idempotency_key=key)

    def find_charge(self, *, idempotency_key: str, timeout: float) -> Charge | None:
        charge = SandboxCharge.objects.filter(idempotency_key=idempotency_key).first()
        return _charge_dto(charge) if charge else None

    def refund(self, *, charge_id: str, idempotency_key: str, timeout: float) -> Refund:
        db = router.db_for_write(SandboxCharge)
        with transaction.atomic(using=db):
            charge = SandboxCharge.objects.select_for_update().get(pk=charge_id)
            refund = SandboxRefund.objects.filter(charge=charge).first()
            if refund is None:
                refund = SandboxRefund.objects.create(
                    id=f"re_{uuid.uuid4().hex[:24]}",
                    charge=charge,
                    idempotency_key=idempotency_key,
                    amount=charge.amount,
                )
                charge.status = SandboxChargeStatus.REFUNDED
                charge.save(update_fields=["status"])
        return Refund(id=refund.id, charge_id=charge.id, amount=refund.amount)


class SandboxShippingProvider:
    def create_shipment(
        self, *, idempotency_key: str, order: dict[str, Any], timeout: float
    ) -> Shipment:
        existing = SandboxShipment.objects.filter(
            idempotency_key=idempotency_key
        ).first()
        if existing is None:
            if order.get("payment_method") == "tok_ship_fail":
                raise ProviderError(
                    "No carrier serves this address.", code="shipping_unavailable"
                )
            try:
                with transaction.atomic(using=router.db_for_write(SandboxShipment)):
                    existing = SandboxShipment.objects.create(
                        id=f"shp_{uuid.uuid4().hex[:24]}",
                        idempotency_key=idempotency_key,
                        order_id=order["id"],
                        status=SandboxShipmentStatus.CREATED,
                    )
            except IntegrityError:
                existing = SandboxShipment.objects.get(idempotency_key=idempotency_key)
        return Shipment(id=existing.id, status=existing.status)

    def find_shipment(self, *, idempotency_key: str, timeout: float) -> Shipment | None:
        shipment = SandboxShipment.objects.filter(
            idempotency_key=idempotency_key
        ).first()
        return Shipment(id=shipment.id, status=shipment.status) if shipment else None

    def cancel(self, *, shipment_id: str, timeout: float) -> Shipment:
        SandboxShipment.objects.filter(
            pk=shipment_id, status=SandboxShipmentStatus.CREATED
        ).update(status=SandboxShipmentStatus.CANCELLED, cancelled_at=timezone.now())
        shipment = SandboxShipment.objects.get(pk=shipment_id)
        return Shipment(id=shipment.id, status=shipment.status)
