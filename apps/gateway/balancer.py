# TEMPORARY (replaced by the resilience branch at merge).
import itertools
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings


class NoHealthyInstance(Exception):
    pass


@dataclass
class Instance:
    url: str
    weight: int = 1
    healthy: bool = True
    in_flight: int = 0


class Balancer:
    def __init__(self, urls):
        self.instances = [Instance(u if isinstance(u, str) else u["url"]) for u in urls]
        self._rr = itertools.count()
        self._lock = threading.Lock()

    def choose(self, *, exclude=()):
        candidates = [i for i in self.instances if i.url not in exclude]
        if not candidates:
            raise NoHealthyInstance()
        return candidates[next(self._rr) % len(candidates)]

    @contextmanager
    def lease(self, instance):
        instance.in_flight += 1
        try:
            yield instance
        finally:
            instance.in_flight -= 1

    def report_failure(self, instance):
        pass

    def snapshot(self):
        return [vars(i).copy() for i in self.instances]


_balancers: dict = {}


def balancer_for(context):
    key = (context, repr(settings.CONTEXTS.get(context)))
    if key not in _balancers:
        _balancers[key] = Balancer(settings.CONTEXTS[context]["instances"])
    return _balancers[key]
