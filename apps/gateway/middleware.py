"""The gateway's middleware (DESIGN.md, "Gateway")."""

from apps.core.metrics import rate_limit_rejected
from apps.core.problems import problem, problem_response
from apps.gateway import ratelimit


class RateLimitMiddleware:
    """Spend each ``/api/`` request's rate-limit hits before any work is
    done; answer 429 over a limit, and tell the caller its budget
    (``RateLimit-*`` headers) either way.

    Runs after the authentication middleware, which sets
    ``request.principal`` (missing or None: an anonymous caller).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith("/api/"):
            return self.get_response(request)
        limits = ratelimit.current()
        if not limits.config.enabled:
            return self.get_response(request)
        decision = limits.check(request)
        if decision is None:
            return self.get_response(request)
        headers = decision.headers()
        if not decision.allowed:
            rate_limit_rejected(decision.scope)
            headers["Retry-After"] = str(decision.reset)
            body = problem(
                429,
                "rate_limited",
                f"Too many requests; try again in {decision.reset} s.",
                retry_after=decision.reset,
            )
            return problem_response(request, body, headers)
        response = self.get_response(request)
        for name, value in headers.items():
            response[name] = value
        return response
