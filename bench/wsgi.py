"""Bench only: the production WSGI application, plus ``/bench/bare``.

``/bench/bare`` is the platform's ceiling: a Django view answering a
``JsonResponse``, called with a ``WSGIRequest`` as Django's handler would,
but with no middleware, no URL resolution and no request signals, served
by the same server in the same process. ``bench/run.py`` serves this module
so that every run measures both ceilings (this one, and ``/health/live``
through the whole stack) beside the endpoints. Never deployed.
"""

from django.core.handlers.wsgi import WSGIRequest
from django.http import JsonResponse

from config.wsgi import application as django_application

BARE_PATH = "/bench/bare"


def bare_view(request):
    return JsonResponse({"status": "ok"})


def application(environ, start_response):
    if environ.get("PATH_INFO") != BARE_PATH:
        return django_application(environ, start_response)
    response = bare_view(WSGIRequest(environ))
    start_response(
        f"{response.status_code} {response.reason_phrase}", list(response.items())
    )
    return response
