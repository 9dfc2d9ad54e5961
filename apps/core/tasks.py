from celery import shared_task

from apps.core.messaging import relay


@shared_task(acks_late=True, ignore_result=True)
def outbox_relay_task() -> int:
    """Periodic safety net: publish whatever the relay process left."""
    publisher = relay.AmqpPublisher()
    try:
        return relay.relay_publish_all(publisher=publisher)
    finally:
        publisher.close()
