"""Every operation of the OpenAPI schema, driven with generated input.

Schemathesis reads ``/api/schema/`` and makes a Hypothesis strategy per
operation: requests that fit the schema, and requests that break it (wrong
types, missing or unknown fields, odd strings, a missing token). Each is
sent in-process to the WSGI application as an anonymous client, a customer
and staff. Generated requests are steered towards the code behind the
validation: path parameters and product ids in bodies name real objects
half of the time; half of the bodies are a valid body with some generated
fields laid over it; a string in a body is sometimes text no schema
generator produces (a lone surrogate, a NUL). Explicit requests follow:
the valid request on each real object (orders in each status, products
active and archived, the caller and another user) as each caller; each
unstorable text in each field of the valid body in turn; a body nested
deeper than the JSON decoder recurses.

What must hold for every request: no 5xx, and every 4xx is
``application/problem+json`` with a ``code``. Generation is derandomized:
the same code and schema give the same requests on every run.
FUZZ_EXAMPLES sets the examples per operation, caller and mode (a deeper
run); FUZZ_SEED makes the run random with that seed, to look further
afield.
"""

import copy
import itertools
import json
import logging
import os
import time
from dataclasses import dataclass, field
from functools import partial

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from werkzeug.test import Client

# 29 operations x 3 callers x 2 modes x 10, and about 200 explicit
# requests: some 1,850 requests, under a minute on two cores.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
SEED = os.environ.get("FUZZ_SEED")
ROLES = ("anonymous", "customer", "staff")
PASSWORD = "correct-horse-42"
# Text that JSON can carry and PostgreSQL cannot store.
UNSTORABLE = ("\ud800", "tail\udfff", "nul\x00byte")
NESTED_TOO_DEEPLY = b"[" * 100_000 + b"]" * 100_000
ODD_STRINGS = (
    *UNSTORABLE,
    "\u202eright-to-left",
    "x" * 10_000,
    "   ",
    "\U0001f600",
    "'; SELECT pg_sleep(0); --",
    "%s%n{0}",
)

# A valid body per operation with one: generated fields are laid over it,
# so an odd field reaches the code that a wholly generated body, failing
# validation on some other field, seldom does.
_PRODUCT = {
    "name": "Lamp",
    "price": "9.99",
    "stock": 3,
    "category": "Office",
    "tags": ["desk"],
    "images": ["https://img.example.com/lamp.jpg"],
    "attributes": {"colour": "green", "watts": 40},
}
_PROFILE = {
    "email": "renamed@example.com",
    "name": "Renamed",
    "current_password": PASSWORD,
}
BASELINES = {
    "POST /api/v1/orders": lambda known: {
        "items": [{"product_id": "mug", "quantity": 2}],
        "payment_method": "tok_visa",
    },
    "POST /api/v1/orders/{order_id}/cancel": lambda known: {"reason": "Too late"},
    "POST /api/v1/products": lambda known: copy.deepcopy(_PRODUCT),
    "PUT /api/v1/products/{product_id}": lambda known: copy.deepcopy(_PRODUCT),
    "PATCH /api/v1/products/{product_id}": lambda known: copy.deepcopy(_PRODUCT),
    "POST /api/v1/products/{product_id}/stock-adjustments": lambda known: {
        "delta": 5,
        "reason": "Recount",
    },
    "POST /api/v1/users": lambda known: {
        "email": "newcomer@example.com",
        "name": "Newcomer",
        "password": "a-long-passphrase-7",
    },
    "POST /api/v1/users/login": lambda known: {
        "email": "bystander@example.com",
        "password": PASSWORD,
    },
    "POST /api/v1/users/logout": lambda known: {"refresh": known["refresh"][0]},
    "POST /api/v1/users/token/refresh": lambda known: {"refresh": known["refresh"][0]},
    "PUT /api/v1/users/{user_id}": lambda known: dict(_PROFILE),
    "PATCH /api/v1/users/{user_id}": lambda known: dict(_PROFILE),
    # Not in the schema: deleting one's own account needs it.
    "DELETE /api/v1/users/{user_id}": lambda known: {"current_password": PASSWORD},
}


@dataclass
class Failure:
    operation: str
    role: str
    status: int
    reason: str
    request: str
    body: str
    trace: str

    @property
    def key(self) -> tuple:
        # One report per operation and kind of failure, not per example.
        last_line = self.trace.strip().splitlines()[-1:] or [""]
        return (self.operation, self.status, self.reason, last_line[0])

    def __str__(self) -> str:
        return (
            f"{self.operation} as {self.role}: {self.status} {self.reason}\n"
            f"  {self.request}\n  -> {self.body[:500]}\n{self.trace}"
        )


class ErrorLog(logging.Handler):
    """Keeps the ERROR records (with tracebacks) of the current request."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@dataclass
class Actors:
    """The customer and the staff member requests are sent as; logged in
    again (made again if deleted) when a generated request deleted them,
    changed their password or revoked their token."""

    app: WSGIHandler
    make_user: object
    users: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        if role == "anonymous":
            return {}
        if not self._token_works(role):
            self._renew(role)
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def _token_works(self, role: str) -> bool:
        if role not in self.tokens:
            return False
        response = Client(self.app).get(
            f"/api/v1/users/{self.users[role].id}",
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
        )
        return response.status_code == 200

    def _renew(self, role: str) -> None:
        from apps.users.models import User

        pk = getattr(self.users.get(role), "pk", None)
        user = User.objects.filter(pk=pk).first()
        if user is None:
            user = self.make_user(
                email=f"{role}-{len(self.tokens)}@example.com",
                password=PASSWORD,
                is_staff=role == "staff",
            )
        else:
            user.set_password(PASSWORD)
            user.save()
        response = Client(self.app).post(
            "/api/v1/users/login", json={"email": user.email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        self.users[role] = user
        self.tokens[role] = response.json["access"]


@pytest.fixture
def wsgi_app():
    """Django's WSGI application, keeping the test's database connections
    across requests (as Django's test client does)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _seed(app, actors: Actors) -> dict[str, list[str]]:
    """Products as they were at the start (an earlier operation may have
    changed or deleted them), fresh orders in each status and a bystander
    with a refresh token; returns what requests sometimes name."""
    from apps.orders.interface import confirm_order
    from apps.products.models import Product
    from apps.users.models import User

    products = {
        "kettle": {"name": "Borealis Kettle", "price": "39.90", "stock": 50,
                   "category": "Kitchen", "tags": ["steel"],
                   "attributes": {"colour": "red"}},
        "mug": {"name": "Stoneware Mug", "price": "4.25", "stock": 500,
                "category": "Kitchen"},
        "lamp": {"name": "Desk Lamp", "price": "19.00", "stock": 0,
                 "category": "Office", "is_archived": True},
    }  # fmt: skip
    for product_id, fields in products.items():
        Product.objects.update_or_create(
            id=product_id,
            defaults={"tags": [], "attributes": {}, "is_archived": False, **fields},
        )
    client = Client(app)
    customer, staff = actors.headers("customer"), actors.headers("staff")
    orders = []
    for product_id in ("kettle", "mug", "mug"):
        response = client.post(
            "/api/v1/orders",
            json={"items": [{"product_id": product_id, "quantity": 1}]},
            headers=customer,
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        orders.append(response.json["id"])
    pending, confirmed, shipped = orders
    for order_id in (confirmed, shipped):
        confirm_order(order_id=order_id)
    response = client.post(f"/api/v1/orders/{shipped}/ship", headers=staff)
    assert response.status_code == 200, response.get_data(as_text=True)

    bystander = User.objects.filter(email="bystander@example.com").first()
    if bystander is None:
        bystander = actors.make_user(email="bystander@example.com")
    bystander.set_password(PASSWORD)
    bystander.save()
    response = client.post(
        "/api/v1/users/login", json={"email": bystander.email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return {
        "product_id": list(products),
        "order_id": orders,
        "user_id": [
            str(bystander.id),
            str(actors.users["customer"].id),
            str(actors.users["staff"].id),
        ],
        "refresh": [response.json["refresh"]],
    }


def _string_slots(value) -> list[tuple[object, object]]:
    """(container, key or index) of every string in a JSON value."""
    slots, pending = [], [value]
    while pending:
        item = pending.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            if isinstance(child, str):
                slots.append((item, key))
            elif isinstance(child, (dict, list)):
                pending.append(child)
    return slots


def _with_body(case, body):
    """The case with another body. A new case, with no generation metadata:
    schemathesis re-validates an edited one, and cannot encode a lone
    surrogate."""
    return case.operation.Case(
        path_parameters=case.path_parameters,
        headers=case.headers,
        query=case.query,
        body=body,
        media_type=case.media_type or "application/json",
    )


@st.composite
def steered_cases(draw, operation, mode, known: dict[str, list[str]]):
    """A generated case, steered towards real objects and odd text."""
    case = draw(operation.as_strategy(mode))
    for name in case.path_parameters or {}:
        if name in known and draw(st.booleans()):
            case.path_parameters[name] = draw(st.sampled_from(known[name]))
    if not isinstance(case.body, (dict, list)):
        return case
    body = copy.deepcopy(case.body)
    baseline = BASELINES.get(operation.label)
    if baseline is not None and isinstance(body, dict) and draw(st.booleans()):
        body = {
            **baseline(known),
            **{k: v for k, v in body.items() if draw(st.integers(0, 3)) == 0},
        }
    slots = _string_slots(body)
    for container, key in slots:
        if key == "product_id" and draw(st.booleans()):
            container[key] = draw(st.sampled_from(known["product_id"]))
    if slots and draw(st.integers(0, 3)) == 0:
        container, key = draw(st.sampled_from(slots))
        container[key] = draw(st.sampled_from(ODD_STRINGS))
    return _with_body(case, body)


PATH_PARAMETERS = ("product_id", "order_id", "user_id")


def _explicit_requests(operation, known):
    """(case, roles, call arguments), beside the generated ones:

    - the operation's valid body (if any) on every real object its path
      can name, as every caller: each object's state meets each caller;
    - staff: the valid body with unstorable text in one field, for each
      field in turn, and a body nested deeper than a JSON decoder recurses.
    """
    names = [name for name in PATH_PARAMETERS if "{" + name + "}" in operation.path]
    baseline = BASELINES.get(operation.label)
    has_body = bool(operation.body) or baseline is not None
    media = {"media_type": "application/json"} if has_body else {}
    for values in itertools.product(*(known[name] for name in names)):
        case = operation.Case(
            path_parameters=dict(zip(names, values, strict=True)),
            **({"body": baseline(known)} if baseline else {}),
            **media,
        )
        yield case, ROLES, {}
    if not has_body:
        return
    path_parameters = {name: known[name][0] for name in names}
    nested = operation.Case(
        path_parameters=path_parameters,
        headers={"Content-Type": "application/json"},
    )
    yield nested, ("staff",), {"data": NESTED_TOO_DEEPLY}
    if baseline is None:
        return
    for index in range(len(_string_slots(baseline(known)))):
        for text in UNSTORABLE:
            body = baseline(known)
            container, key = _string_slots(body)[index]
            container[key] = text
            case = operation.Case(path_parameters=path_parameters, body=body, **media)
            yield case, ("staff",), {}


def _check(
    case, response, role: str, errors: ErrorLog, data: bytes | None = None
) -> Failure | None:
    status = response.status_code
    reason = ""
    if status >= 500:
        reason = "server error"
    elif status >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if not content_type.startswith("application/problem+json"):
            reason = f"a 4xx with Content-Type {content_type!r}"
        elif not isinstance(body, dict) or not body.get("code"):
            reason = "a problem without a code"
    if not reason:
        return None
    return Failure(
        operation=case.operation.label,
        role=role,
        status=status,
        reason=reason,
        request=case.as_curl_command()
        + ("" if data is None else f" with the body {data[:20]!r}... ({len(data)} B)"),
        body=response.content.decode(errors="replace"),
        trace="\n".join(errors.lines),
    )


def _fuzz(strategy, send_one) -> None:
    """Send EXAMPLES requests drawn from ``strategy`` through ``send_one``."""
    chosen = {"derandomize": True} if SEED is None else {}

    @settings(
        max_examples=EXAMPLES,
        database=None,
        deadline=None,
        # Every failure is collected, none raised, so none is shrunk.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        **chosen,
    )
    @given(case=strategy)
    def run(case):
        send_one(case)

    if SEED is not None:
        run = seed(int(SEED))(run)
    run()


@pytest.mark.fuzz
@pytest.mark.django_db(transaction=True, databases=["default", "orders", "catalog"])
def test_no_operation_answers_5xx_or_a_4xx_that_is_not_a_problem(wsgi_app, make_user):
    actors = Actors(app=wsgi_app, make_user=make_user)
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", wsgi_app, config=schemathesis.Config()
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    errors = ErrorLog()
    failures: dict[tuple, Failure] = {}
    sent = 0

    def send(case, role: str, headers: dict[str, str], **kwargs) -> None:
        nonlocal sent
        errors.lines.clear()
        response = case.call(headers=headers, **kwargs)
        sent += 1
        failure = _check(case, response, role, errors, kwargs.get("data"))
        if failure is not None:
            failures.setdefault(failure.key, failure)

    started = time.monotonic()
    logging.getLogger().addHandler(errors)
    try:
        for operation in operations:
            known = _seed(wsgi_app, actors)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for role in ROLES:
                    # A request that deletes the caller or revokes the token
                    # makes the rest of this batch 401s; the next batch logs
                    # in again.
                    headers = actors.headers(role)
                    try:
                        _fuzz(
                            steered_cases(operation, mode, known),
                            partial(send, role=role, headers=headers),
                        )
                    except Unsatisfiable:
                        # Nothing in this operation can break the schema.
                        if mode is not GenerationMode.NEGATIVE:
                            raise
            for case, roles, kwargs in _explicit_requests(operation, known):
                for role in roles:
                    send(case, role, actors.headers(role), **kwargs)
    finally:
        logging.getLogger().removeHandler(errors)

    elapsed = time.monotonic() - started
    print(f"{len(operations)} operations, {sent} requests in {elapsed:.0f} s")
    assert operations
    assert not failures, "\n\n".join(str(f) for f in failures.values())
