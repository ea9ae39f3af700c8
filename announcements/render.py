"""How the domain's messages read, before any platform styles them."""

from __future__ import annotations

from datetime import datetime, timedelta

from announcements.figures import percent
from announcements.schedules import duration_text
from announcements.timespec import zone
from announcements.types import (
    Action,
    Button,
    Kind,
    OutboundMessage,
    PollChoice,
    PollView,
    Purpose,
    Verb,
)
from storage.models import Announcement, PollOption


def local(dt: datetime | None, tz: str) -> str:
    if dt is None:
        return "now"
    return dt.astimezone(zone(tz)).strftime("%a %Y-%m-%d %H:%M ") + tz


def label(ann: Announcement) -> str:
    kinds = {Kind.MESSAGE: "Announcement", Kind.POLL: "Poll", Kind.REMINDER: "Reminder"}
    return f"{kinds[Kind(ann.kind)]} #{ann.id}"


def _flags(ann: Announcement) -> str:
    flags = [
        name
        for name, on in (
            ("acknowledgement requested", ann.ack),
            ("urgent", ann.urgent),
            ("multiple choice", ann.multi),
            ("anonymous", ann.anonymous),
            ("in each recipient's time zone", ann.local_time),
        )
        if on
    ]
    if ann.nudge_every:
        flags.append(f"nudges non-readers every {ann.nudge_every}")
    if ann.every:
        flags.append(f"repeats every {ann.every}")
    if ann.escalate_after:
        after = duration_text(timedelta(seconds=ann.escalate_after))
        flags.append(f"escalates to people's next platform after {after}")
    return ", ".join(flags)


def _body(ann: Announcement, options: list[PollOption], text: str | None = None) -> str:
    text = ann.text if text is None else text
    if ann.kind != Kind.POLL:
        return text
    lines = [text] + [f"  {o.position}. {o.label}" for o in options]
    return "\n".join(lines)


def preview(
    ann: Announcement, options: list[PollOption], breakdown: str, tz: str,
    *, sample: tuple[str, str] | None = None,
) -> OutboundMessage:
    """``sample`` (a recipient's name, the text as they will see it) for a personal text."""
    when = f"every {ann.every}" if ann.every else local(ann.send_at, tz)
    details = [f"Audience: {ann.audience}", f"Sends: {when}"]
    if ann.category:
        details.append(f"Category: {ann.category}")
    if sample:
        details.append(f"Shown as {sample[0]} will see it; each recipient sees their own "
                       "details.")
    if ann.closes_at:
        details.append(f"Closes: {local(ann.closes_at, tz)}")
    if flags := _flags(ann):
        details.append(f"Options: {flags}")
    people = "person" if ann.audience_size == 1 else "people"
    return OutboundMessage(
        title=f"Preview of {label(ann)} — will reach {ann.audience_size} {people}: {breakdown}",
        text=_body(ann, options, sample[1] if sample else None),
        footer="\n".join(details),
        buttons=(
            Button(Action.of(Verb.SUBMIT, ann.id), "Submit for approval", "primary"),
            Button(Action.of(Verb.DISCARD, ann.id), "Cancel", "danger"),
        ),
        announcement_id=ann.id,
        purpose="preview",
    )


def approval_request(
    ann: Announcement, options: list[PollOption], author_name: str, breakdown: str, tz: str
) -> OutboundMessage:
    when = f"every {ann.every}" if ann.every else local(ann.send_at, tz)
    footer = f"To: {ann.audience} ({ann.audience_size} people: {breakdown}) · Sends: {when}"
    if ann.category:
        footer += f" · Category: {ann.category}"
    if flags := _flags(ann):
        footer += f" · {flags}"
    return OutboundMessage(
        title=f"{author_name} asks you to approve {label(ann)}",
        text=_body(ann, options),
        footer=footer,
        buttons=(
            Button(Action.of(Verb.APPROVE, ann.id), "Approve", "primary"),
            Button(Action.of(Verb.REJECT, ann.id), "Reject", "danger"),
        ),
        announcement_id=ann.id,
        purpose=Purpose.APPROVAL,
    )


def decided(ann: Announcement, verdict: str) -> OutboundMessage:
    """What an approval request turns into once someone has acted on it."""
    return OutboundMessage(
        title=f"{label(ann)}: {verdict}",
        text=ann.text,
        announcement_id=ann.id,
        purpose=Purpose.APPROVAL,
    )


def outcome(ann: Announcement, approver_name: str, tz: str) -> OutboundMessage:
    if ann.status == "rejected":
        reason = f"\nReason: {ann.reject_reason}" if ann.reject_reason else ""
        return OutboundMessage(
            title=f"{label(ann)} was rejected by {approver_name}",
            text=ann.text + reason,
            announcement_id=ann.id,
            purpose=Purpose.OUTCOME,
        )
    when = f"every {ann.every}" if ann.every else local(ann.send_at, tz)
    return OutboundMessage(
        title=f"{label(ann)} was approved by {approver_name}",
        text=f"It goes to {ann.audience_size} people ({when}). "
        f"Follow it with /crier status {ann.id}.",
        announcement_id=ann.id,
        purpose=Purpose.OUTCOME,
    )


def announcement(
    ann: Announcement,
    options: list[PollOption],
    author_name: str,
    *,
    counts: dict[int, int] | None = None,
    acknowledged_at: str | None = None,
    closed: bool = False,
    nudge: bool = False,
    text: str | None = None,
) -> OutboundMessage:
    """The message a recipient gets, with Got it or the poll's choices; ``text`` is the
    announcement's text as this recipient sees it, where it is personal."""
    text = ann.text if text is None else text
    title = ("Reminder: " if nudge else "") + (
        "URGENT — " if ann.urgent else ""
    ) + f"{'Poll' if ann.kind == Kind.POLL else 'Announcement'} from {author_name}"
    buttons: tuple[Button, ...] = ()
    poll = None
    footer = None
    if ann.kind == Kind.POLL:
        poll = PollView(
            question=text,
            choices=tuple(
                PollChoice(
                    Action.of(Verb.VOTE, ann.id, o.position),
                    o.label,
                    None if counts is None else counts.get(o.position, 0),
                )
                for o in options
            ),
            multi=ann.multi,
            anonymous=ann.anonymous,
            closed=closed,
        )
        notes = []
        if ann.multi:
            notes.append("choose all that apply")
        if ann.anonymous:
            notes.append("anonymous: nobody sees who chose what")
        if closed:
            notes.append("this poll is closed")
        footer = " · ".join(notes) or None
    elif ann.ack:
        if acknowledged_at:
            footer = f"✓ Acknowledged {acknowledged_at}"
        else:
            buttons = (Button(Action.of(Verb.ACK, ann.id), "Got it", "primary"),)
            footer = "Please confirm you have read this."
    return OutboundMessage(
        title=title,
        text=text,
        buttons=buttons,
        poll=poll,
        footer=footer,
        urgent=ann.urgent,
        announcement_id=ann.id,
        purpose=Purpose.NUDGE if nudge else Purpose.ANNOUNCEMENT,
    )


def bar(done: int, total: int, width: int = 20) -> str:
    """A text progress bar: ``[██████░░░░] 60%``."""
    if total <= 0:
        return "[" + "░" * width + "]   0%"
    filled = round(width * done / total)
    return "[" + "█" * filled + "░" * (width - filled) + f"] {percent(done, total):3d}%"
