"""The gateway's interface for the other contexts: how a context's
interface binds to its deployment (apps.gateway.bindings)."""

from apps.gateway.bindings import ContextBinding, RemoteError, context_mode
from apps.gateway.remote import ContextUnavailable

__all__ = ["ContextBinding", "ContextUnavailable", "RemoteError", "context_mode"]
