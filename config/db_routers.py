"""Send each bounded context's models to its own database alias.

Contexts never share a transaction or a foreign key across aliases, so the
three aliases may be three servers, or one PostgreSQL database in a small
deployment.
"""

APP_DATABASES = {
    "orders": "orders",
    "sagas": "orders",
    "products": "catalog",
}
DEFAULT = "default"


def _alias_for(app_label: str) -> str:
    return APP_DATABASES.get(app_label, DEFAULT)


class ContextRouter:
    def db_for_read(self, model, **hints):
        return _alias_for(model._meta.app_label)

    def db_for_write(self, model, **hints):
        return _alias_for(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints):
        return _alias_for(obj1._meta.app_label) == _alias_for(obj2._meta.app_label)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == _alias_for(app_label)
