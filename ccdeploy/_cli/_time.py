"""The ``--at RFC3339`` option's parser, shared by the commands that judge something at a given instant."""

from __future__ import annotations

from datetime import UTC, datetime

from ccdeploy.errors import UsageError


def parse_at(text: str | None) -> datetime | None:
    """Parse an ``--at`` value (RFC 3339 with a time zone; ``Z`` allowed); ``None`` when the option was not given."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise UsageError("--at needs a time zone (for example 2026-01-01T00:00:00Z)")
    return value


def at_or_now(text: str | None) -> datetime:
    """:func:`parse_at`, defaulting to the current time."""
    return parse_at(text) or datetime.now(UTC)
