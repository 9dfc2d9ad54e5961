"""The base of every API view: what an endpoint does with input it does not
know (ADR 0022).

- A query parameter the endpoint does not define is a 400 naming it. Views
  that take query parameters list their methods in ``query_methods`` and
  parse them with a StrictSerializer, which names the unknown ones; every
  other method takes none.
- A body field the endpoint does not define is a 400 naming it: the
  StrictSerializer of each method with a body does that, and a method that
  takes no body (not in ``body_methods``) refuses a non-empty one.
- ``If-Match`` is honoured where a view says so (``honours_if_match``; a
  stale one is a 412 there) and a 400 on any other write: a client that
  believes its write is conditional learns that it is not.
"""

from rest_framework.exceptions import ValidationError
from rest_framework.views import APIView

from apps.core.errors import DomainError

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class IfMatchNotSupported(DomainError):
    code = "if_match_not_supported"
    title = "If-Match not supported"


class ApiView(APIView):
    # Lower-case method names, as DRF's handlers.
    query_methods: frozenset[str] = frozenset()
    body_methods: frozenset[str] = frozenset({"post", "put", "patch"})
    honours_if_match = False

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        method = request.method.lower()
        if method not in self.query_methods and request.query_params:
            raise ValidationError(
                {
                    name: ["Unknown query parameter: this endpoint takes none."]
                    for name in sorted(request.query_params)
                }
            )
        if request.method in _SAFE:
            return
        if method not in self.body_methods and request.data:
            if isinstance(request.data, dict):
                raise ValidationError(
                    {
                        str(name): ["Unknown field: this endpoint takes no body."]
                        for name in sorted(request.data)
                    }
                )
            raise ValidationError(["This endpoint takes no body."])
        if not self.honours_if_match and "If-Match" in request.headers:
            raise IfMatchNotSupported(
                "This endpoint does not make writes conditional; send no If-Match."
            )
