"""Timestamps as the API shows them."""

from datetime import datetime


def iso_utc(value: datetime) -> str:
    """ISO 8601 with "Z" for UTC (what JavaScript's Date prints)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
