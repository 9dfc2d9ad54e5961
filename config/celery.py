import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Event consumers (plain JSON messages on their own queues) run in the
# worker beside the tasks: see apps/core/messaging/worker.py.
from apps.core.messaging.worker import EventConsumersStep  # noqa: E402

app.steps["consumer"].add(EventConsumersStep)
