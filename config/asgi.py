import os

from django.core.asgi import get_asgi_application

from config.telemetry import configure_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")

# Before the application loads its middleware: tracing adds its own.
configure_tracing("web")
application = get_asgi_application()
