"""Events between contexts: transactional outbox, relay, consumers.

A context that publishes events keeps a concrete ``OutboxEventBase`` model in
its own database and writes an event row in the same transaction as the
change it describes (``outbox.outbox_append``). The relay publishes pending
rows to a durable RabbitMQ topic exchange with publisher confirms and marks
them sent. Consumers own durable queues bound to that exchange, record each
event id in an inbox (``InboxEntryBase``) in the same transaction as their
work, retry transient failures through delay queues and dead-letter what
still fails. See docs/decisions/0011-outbox-relay-and-consumers.md.
"""
