from django.apps import AppConfig


class SagasConfig(AppConfig):
    name = "sagas"
    label = "sagas"
    verbose_name = "Sagas"

    def ready(self):
        # Registers the saga definitions with the engine.
        from sagas import create_order  # noqa: F401
