"""The orders context's service interface (not built yet)."""
