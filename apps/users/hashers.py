"""Argon2 with a bound on how many hashes run at once in one process.

Each hash holds ``memory_cost`` KiB (100 MiB with Django's parameters) for
its duration, so concurrent logins multiply memory. See ADR 0016.
"""

import threading

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.core.exceptions import ImproperlyConfigured

_slots_lock = threading.Lock()
_slots_by_size: dict[int, threading.BoundedSemaphore] = {}


def _slots() -> threading.BoundedSemaphore:
    """This process's semaphore, sized by PASSWORD_HASH_CONCURRENCY."""
    size = settings.PASSWORD_HASH_CONCURRENCY
    if not isinstance(size, int) or size < 1:
        raise ImproperlyConfigured("PASSWORD_HASH_CONCURRENCY must be 1 or more.")
    with _slots_lock:
        if size not in _slots_by_size:
            _slots_by_size[size] = threading.BoundedSemaphore(size)
        return _slots_by_size[size]


class BoundedArgon2PasswordHasher(Argon2PasswordHasher):
    """Django's Argon2id hasher, its parameters and stored hashes unchanged,
    running at most PASSWORD_HASH_CONCURRENCY hashes at once per process.

    Every caller goes through it: login, registration, password changes,
    current-password checks, the admin, and the dummy hash Django's
    ModelBackend runs for an unknown email. The rest queue for a slot.
    """

    def encode(self, password, salt):
        with _slots():
            return super().encode(password, salt)

    def verify(self, password, encoded):
        with _slots():
            return super().verify(password, encoded)
