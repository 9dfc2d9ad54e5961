import os
import sys

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's Django fixup closes every database connection before and after
# each task unless told to reuse them, so every saga step opened new
# PostgreSQL connections (a server process forked for each; measured in
# docs/performance.md). Tasks get a request's lifecycle instead: connections
# kept for CONN_MAX_AGE, health-checked before first use, closed when
# broken or too old.
app.conf.CELERY_DB_REUSE_MAX = sys.maxsize


@task_prerun.connect
@task_postrun.connect
def close_old_connections(task=None, **kwargs):
    # An eager task runs inside its caller's request or transaction.
    if task is not None and task.request.is_eager:
        return
    from django.db import close_old_connections

    close_old_connections()


# Task counts and durations; a worker serves them on CELERY_METRICS_PORT.
from apps.core import metrics  # noqa: E402

task_prerun.connect(metrics.celery_task_prerun, weak=False)
task_postrun.connect(metrics.celery_task_postrun, weak=False)
worker_init.connect(metrics.celery_worker_exporter_start, weak=False)

# Event consumers (plain JSON messages on their own queues) run in the
# worker beside the tasks: see apps/core/messaging/worker.py.
from apps.core.messaging.worker import EventConsumersStep  # noqa: E402

app.steps["consumer"].add(EventConsumersStep)
