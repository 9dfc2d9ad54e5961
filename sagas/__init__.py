"""Saga engine and the create-order saga (not built yet)."""
