"""Production settings without the gateway's middleware, for bench/gateway.py:
what the layer costs is the difference. DRF's GatewayAuthentication then
verifies each token itself; nothing is rate-limited."""

from config.settings.prod import *  # noqa: F403
from config.settings.prod import MIDDLEWARE

MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("apps.gateway.")]
RATELIMIT_ENABLED = False
