"""Settings of the Celery worker processes the saga tests start: the test
settings, with the saga tasks on the worker's own queue."""

import os

from config.settings.test import *  # noqa: F403

SAGA_TASK_QUEUE = os.environ["SAGA_TASK_QUEUE"]
SAGA_SANDBOX_SLOW_SECONDS = float(os.environ.get("SAGA_SANDBOX_SLOW_SECONDS", "3"))
SAGA_RETRY_BACKOFF_SECONDS = 0.1
EVENT_CONSUMERS_ENABLED: list[str] = []
