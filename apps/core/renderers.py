from rest_framework.renderers import JSONRenderer


class ProblemJSONRenderer(JSONRenderer):
    """Lets clients that ask for ``application/problem+json`` get it."""

    media_type = "application/problem+json"
