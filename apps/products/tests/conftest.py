from decimal import Decimal

import pytest

from apps.products.models import Product


@pytest.fixture
def make_product(db):
    counter = {"n": 0}

    def make(**fields) -> Product:
        counter["n"] += 1
        values = {
            "id": f"p{counter['n']}",
            "name": f"Product {counter['n']}",
            "price": Decimal("10.00"),
            "stock": 10,
            "category": "Misc",
        }
        values.update(fields)
        return Product.objects.create(**values)

    return make


@pytest.fixture
def admin_client(client, staff):
    """The staff user, made superuser, logged in to the admin."""
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client
