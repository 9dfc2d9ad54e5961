"""Saga engine (a persisted state machine) and the create-order saga."""
