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
