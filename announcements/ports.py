"""What the domain needs from a chat platform, and how a platform says no.

Every adapter (console, Slack, Telegram, Teams) implements ``ChatPlatform``.
An adapter translates; it never decides who may do what. The delivery engine
reads the exceptions below to choose between retrying, waiting and giving up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from announcements.types import OutboundMessage


class DeliveryError(Exception):
    """A platform refused a send. Subclasses say what the engine should do."""


class RateLimited(DeliveryError):
    """429: wait ``retry_after`` seconds before the next request to this platform."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(f"{message} (retry after {retry_after:g}s)")
        self.retry_after = max(0.0, float(retry_after))


class Unreachable(DeliveryError):
    """The person blocked the bot, left, or does not exist here. Never retried."""


class TransientError(DeliveryError):
    """5xx, timeouts, connection resets: retried with backoff and jitter."""


class PermanentError(DeliveryError):
    """The request itself is wrong (bad payload, message too long). Not retried."""


@dataclass(frozen=True)
class RateLimits:
    """Requests per second a platform allows. ``per_conversation`` bounds one chat."""

    per_second: float
    per_conversation: float
    burst: int = 1
    #: Above ``per_second``: the lane probes upwards to this rate (adaptive pacing).
    ceiling: float = 0.0


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "image/png"


@runtime_checkable
class ChatPlatform(Protocol):
    """A chat platform as the domain and the delivery engine see it."""

    #: "console", "slack", "telegram", "teams"
    name: str
    #: True when the platform addresses people by their directory email (console).
    identifies_by_email: bool
    limits: RateLimits

    async def start(self) -> None:
        """Open what requests need (HTTP sessions, the bot's own identity). Called once,
        inside the event loop, before the first request; calling it again does nothing."""
        ...

    async def stop(self) -> None:
        """Close what ``start`` opened. Called once when the process stops."""
        ...

    async def open_direct(self, account: str) -> str:
        """The address of a direct conversation with a person, given their account on
        this platform (``Identity.platform_user_id``), opening it where the platform
        needs that first. Raises ``Unreachable`` when the account cannot be messaged."""
        ...

    async def send(self, address: str, message: OutboundMessage) -> str:
        """Send to a person or channel; return an opaque reference to the message."""
        ...

    async def update(self, address: str, message_ref: str, message: OutboundMessage) -> None:
        """Replace a message sent earlier (buttons become "✓ Acknowledged", edits)."""
        ...

    async def delete(self, address: str, message_ref: str) -> None:
        """Remove a message sent earlier (recall)."""
        ...

    async def post_report(
        self, channel: str, message: OutboundMessage, attachment: Attachment | None
    ) -> str:
        """Post to a channel or group, with a file where the platform allows."""
        ...
