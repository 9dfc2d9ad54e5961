"""Location-transparent context interfaces (DESIGN.md: "the same call runs
in-process or over HTTP to a separate deployment of that context, chosen by
settings").

A context's ``interface.py`` declares one binding and exposes its functions
through it::

    binding = ContextBinding("products", errors=(InsufficientStock, ...))

    @binding.expose(idempotent=True)
    def reserve_stock(*, order_ref: str, items: Iterable[ReservationItem]) -> ...

When ``settings.CONTEXTS["products"]["mode"]`` is ``"local"`` (the default),
the call runs here. When it is ``"remote"``, the arguments are turned into
JSON from the function's type hints, sent to the context's internal API
(apps.gateway.internal) through the resilience policy and the load balancer
(apps.gateway.remote), and the answer is turned back into the same DTOs, or
raised as the same domain error. Callers never know which.

pydantic's TypeAdapter does the (de)serialisation: it understands frozen
dataclasses, Decimal, UUID, datetime, Literal and the containers the
interfaces use, so the DTOs stay plain dataclasses.
"""

import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from pydantic import TypeAdapter

from apps.core.errors import DomainError

_registry: dict[str, "ContextBinding"] = {}


def context_mode(context: str) -> str:
    """``"local"`` or ``"remote"``: where ``context`` runs for this process."""
    return settings.CONTEXTS.get(context, {}).get("mode", "local")


def _json_hint(hint: Any) -> Any:
    """The hint to (de)serialise with: a one-shot ``Iterable[X]`` travels as
    a list (pydantic would keep it a lazy generator)."""
    if typing.get_origin(hint) is Iterable:
        (item,) = typing.get_args(hint) or (Any,)
        return list[item]
    return hint


@dataclass(frozen=True)
class ExposedFunction:
    """One interface function, with what it needs to cross a process."""

    context: str
    name: str
    function: Callable[..., Any]
    idempotent: bool
    signature: inspect.Signature
    arguments: dict[str, TypeAdapter]
    result: TypeAdapter
    # The arguments declared Iterable[...]: sent as the list they yield.
    iterables: frozenset[str]

    def dump_arguments(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        bound = self.signature.bind(*args, **kwargs)
        out = {}
        for name, value in bound.arguments.items():
            if name in self.iterables:  # a generator, a dict's keys, a set
                value = list(value)
            out[name] = self.arguments[name].dump_python(value, mode="json")
        return out

    def load_arguments(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Typed arguments from JSON; raises pydantic.ValidationError or
        TypeError (unknown or missing names)."""
        unknown = set(payload) - set(self.arguments)
        if unknown:
            raise TypeError(f"unknown arguments: {', '.join(sorted(unknown))}")
        values = {
            name: self.arguments[name].validate_python(value)
            for name, value in payload.items()
        }
        self.signature.bind(**values)  # missing required ones: TypeError
        return values

    def dump_result(self, value: Any) -> Any:
        return self.result.dump_python(value, mode="json")

    def load_result(self, payload: Any) -> Any:
        return self.result.validate_python(payload)


class ContextBinding:
    """The binding of one context's interface: local or remote by settings."""

    def __init__(self, context: str, *, errors: Iterable[type[DomainError]] = ()):
        self.context = context
        self.errors = {cls.__name__: cls for cls in errors}
        self.functions: dict[str, ExposedFunction] = {}
        _registry[context] = self

    def expose(self, *, idempotent: bool) -> Callable:
        """Decorate an interface function.

        Args:
            idempotent: the same call may be sent again (after a timeout or
                a 5xx) without a second effect; only then does the remote
                path retry it.
        """

        def decorate(function: Callable) -> Callable:
            hints = typing.get_type_hints(function)
            signature = inspect.signature(function)
            exposed = ExposedFunction(
                context=self.context,
                name=function.__name__,
                function=function,
                idempotent=idempotent,
                signature=signature,
                arguments={
                    name: TypeAdapter(_json_hint(hints.get(name, Any)))
                    for name in signature.parameters
                },
                result=TypeAdapter(hints.get("return", Any)),
                iterables=frozenset(
                    name
                    for name in signature.parameters
                    if typing.get_origin(hints.get(name)) is Iterable
                ),
            )
            self.functions[exposed.name] = exposed

            @functools.wraps(function)
            def call(*args: Any, **kwargs: Any) -> Any:
                if context_mode(self.context) != "remote":
                    return function(*args, **kwargs)
                from apps.gateway import remote

                return remote.invoke(self, exposed, args, kwargs)

            return call

        return decorate

    def error_from_remote(self, body: dict[str, Any]) -> DomainError:
        """The domain error a remote answer describes, as its own class when
        this interface declares it."""
        cls = self.errors.get(body.get("type", ""))
        detail = body.get("detail") or ""
        data = body.get("data") or {}
        if body.get("type") in ("ServiceUnavailable", "ContextUnavailable"):
            # Its own call to another context failed: transient here too.
            from apps.gateway.remote import ContextUnavailable

            return ContextUnavailable(self.context, detail or "unavailable")
        if cls is None:
            return RemoteError(
                f"{self.context}: {body.get('type', 'error')}: {detail}",
            )
        return cls.from_remote(detail, data)


class RemoteError(DomainError):
    """A remote context answered with an error its interface does not
    declare (a bug on one side: the caller gets a 502)."""

    status = 502
    code = "bad_gateway"
    title = "Bad gateway"


def exposed_function(context: str, name: str) -> ExposedFunction | None:
    """The exposed function ``context.name``, importing the context's
    interface module on first use (it registers its binding)."""
    if context not in _registry:
        if context not in settings.CONTEXTS:
            return None
        import importlib

        try:
            importlib.import_module(f"apps.{context}.interface")
        except ImportError:
            return None
    binding = _registry.get(context)
    return binding.functions.get(name) if binding else None
