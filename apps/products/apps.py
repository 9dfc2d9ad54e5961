from django.apps import AppConfig
from django.db.backends.signals import connection_created


class ProductsConfig(AppConfig):
    name = "apps.products"
    label = "products"
    verbose_name = "Catalog"

    def ready(self):
        from apps.products.search import register_sqlite_functions

        connection_created.connect(
            register_sqlite_functions, dispatch_uid="products_sqlite_search"
        )
