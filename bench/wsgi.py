"""Bench only: the production WSGI application, plus two ceilings.

- ``/bench/bare``: a Django view answering a ``JsonResponse``, called with a
  ``WSGIRequest`` as Django's handler would, but with no middleware, no URL
  resolution and no request signals: what the server and a request object
  cost.
- ``/bench/django``: ``/health/live`` itself (the same view and URLconf)
  through Django's own handler (URL resolution, request signals, response
  closing) with an empty middleware list: the "bare Django view with no
  middleware" of issue 11. ``/health/live`` through the production
  application minus this is what the middleware stack costs.

Both are served by the same server in the same process as the production
application; ``bench/run.py`` serves this module so that every run measures
the ceilings beside the endpoints. Never deployed.
"""

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import JsonResponse

from config.wsgi import application as django_application

BARE_PATH = "/bench/bare"
DJANGO_PATH = "/bench/django"
LIVE_PATH = "/health/live"


def bare_view(request):
    return JsonResponse({"status": "ok"})


class NoMiddlewareHandler(WSGIHandler):
    """Django's WSGI handler as with ``MIDDLEWARE = []``."""

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response)


no_middleware_application = NoMiddlewareHandler()


def application(environ, start_response):
    path = environ.get("PATH_INFO")
    if path == DJANGO_PATH:
        environ["PATH_INFO"] = LIVE_PATH
        return no_middleware_application(environ, start_response)
    if path != BARE_PATH:
        return django_application(environ, start_response)
    response = bare_view(WSGIRequest(environ))
    start_response(
        f"{response.status_code} {response.reason_phrase}", list(response.items())
    )
    return response
