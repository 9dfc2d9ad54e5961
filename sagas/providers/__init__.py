"""Payment and shipping providers: small protocols, chosen by settings.

``SAGA_PAYMENT_PROVIDER`` and ``SAGA_SHIPPING_PROVIDER`` name the adapter
classes (dotted paths); the sandbox adapters are the defaults. Every call
carries an idempotency key, so the resilience policy may retry it.
"""

from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from apps.gateway.interface import RetryableError


class ProviderError(Exception):
    """The provider said no for good (a declined card): no retry helps."""

    def __init__(self, message: str, *, code: str):
        self.code = code
        super().__init__(message)


class ProviderUnavailable(RetryableError):
    """The provider failed in a way another attempt may not (5xx, reset)."""


@dataclass(frozen=True)
class Charge:
    id: str
    amount: Decimal
    status: str  # "captured" or "refunded"


@dataclass(frozen=True)
class Refund:
    id: str
    charge_id: str
    amount: Decimal


@dataclass(frozen=True)
class Shipment:
    id: str
    status: str  # "created" or "cancelled"


class PaymentProvider(Protocol):
    def charge(
        self, *, idempotency_key: str, amount: Decimal, token: str, timeout: float
    ) -> Charge:
        """Capture ``amount``; the same key again returns the same charge.

        Raises ProviderError (declined) or ProviderUnavailable/TimeoutError.
        """

    def find_charge(self, *, idempotency_key: str, timeout: float) -> Charge | None:
        """The charge made with ``idempotency_key``, if any (a charge whose
        answer was lost still has to be refunded)."""

    def refund(self, *, charge_id: str, idempotency_key: str, timeout: float) -> Refund:
        """Give the whole charge back; the same key again is the same refund."""


class ShippingProvider(Protocol):
    def create_shipment(
        self, *, idempotency_key: str, order: dict[str, Any], timeout: float
    ) -> Shipment:
        """Book a shipment for ``order`` (a snapshot: id, items, token);
        the same key again returns the same shipment.

        Raises ProviderError (cannot ship) or ProviderUnavailable.
        """

    def find_shipment(self, *, idempotency_key: str, timeout: float) -> Shipment | None:
        """The shipment booked with ``idempotency_key``, if any."""

    def cancel(self, *, shipment_id: str, timeout: float) -> Shipment:
        """Cancel the shipment; cancelling twice is not an error."""


@cache
def _provider(path: str):
    return import_string(path)()


def payment_provider() -> PaymentProvider:
    return _provider(
        getattr(
            settings,
            "SAGA_PAYMENT_PROVIDER",
            "sagas.providers.sandbox.SandboxPaymentProvider",
        )
    )


def shipping_provider() -> ShippingProvider:
    return _provider(
        getattr(
            settings,
            "SAGA_SHIPPING_PROVIDER",
            "sagas.providers.sandbox.SandboxShippingProvider",
        )
    )
