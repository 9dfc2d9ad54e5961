import pytest
from django.db import connections


def _tables(alias):
    connection = connections[alias]
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


@pytest.mark.django_db(databases="__all__")
def test_each_context_lives_in_its_own_database():
    default, orders, catalog = (_tables(a) for a in ("default", "orders", "catalog"))

    assert "users_user" in default
    assert "auth_group" in default
    assert "users_user" not in orders | catalog
    assert "auth_group" not in orders | catalog
    assert {"products_product", "products_stockreservation"} <= catalog
    assert "products_product" not in default | orders
