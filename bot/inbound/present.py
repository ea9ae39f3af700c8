"""The one contract for showing a ``Reply``, whatever the platform.

``Reply.update`` replaces the message whose button was pressed, when one was;
everything else the reply holds is said to the person (only to them where the
platform allows). Whatever the pipeline returns is shown: a reply whose update
is its message still answers a typed command (nothing was clicked to update).
"""

from __future__ import annotations

from dataclasses import dataclass

from announcements.types import OutboundMessage, Reply


@dataclass(frozen=True)
class Showing:
    """What an adapter shows for one reply."""

    #: Put in place of the clicked message (None: leave it as it is).
    replace: OutboundMessage | None
    #: Say these to the person, in order.
    say: tuple[OutboundMessage, ...]
    #: The clicked message now says it all; a platform with toasts may show this.
    toast: str | None = None


def showing(reply: Reply, clicked: bool) -> Showing:
    """How to show ``reply`` in answer to a click (``clicked``) or a typed request."""
    replace = reply.update if clicked else None
    said: list[OutboundMessage] = []
    toast = None
    if reply.message is not None:
        if replace is not None and reply.message == replace:
            toast = reply.message.title or reply.message.text
        else:
            said.append(reply.message)
    elif reply.update is not None and replace is None:
        said.append(reply.update)  # nothing was clicked: the update is the answer
    said += [OutboundMessage(text=n) for n in reply.notices]
    return Showing(replace, tuple(said), toast)
