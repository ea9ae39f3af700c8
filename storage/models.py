"""The tables. One class per table; statuses and kinds are plain strings whose
allowed values are defined by the domain (``announcements.types``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


class Person(SQLModel, table=True):
    """An employee from the directory. ``email`` (lower case) is the identity."""

    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    name: str = Field(max_length=80)
    department: str = Field(max_length=120, index=True)
    location: str | None = Field(default=None, max_length=120, index=True)
    title: str | None = Field(default=None, max_length=80)
    timezone: str = Field(default="UTC", max_length=64)
    active: bool = Field(default=True, index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    #: Set by a privacy erasure: the row is a pseudonym kept for aggregate counts.
    erased_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class Identity(SQLModel, table=True):
    """A person's account on one chat platform."""

    __tablename__ = "identity"
    __table_args__ = (
        UniqueConstraint("platform", "platform_user_id", name="uq_identity_platform_user"),
        UniqueConstraint("person_id", "platform", name="uq_identity_person_platform"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    platform: str = Field(max_length=20)
    platform_user_id: str = Field(max_length=80)
    # Where to DM the person when it differs from the user id (a Slack DM
    # channel, a Teams conversation reference as JSON).
    address: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    linked_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class RoleGrant(SQLModel, table=True):
    """``role`` (author, approver, admin) over ``scope`` (``*``, a department, ``loc:City``)."""

    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("person_id", "role", "scope", name="uq_role_grant"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    role: str = Field(max_length=20)
    scope: str = Field(max_length=130)


class Announcement(SQLModel, table=True):
    """A message, poll or recurring reminder and where it is in its lifecycle."""

    __tablename__ = "announcement"
    __table_args__ = (
        UniqueConstraint("parent_id", "occurrence_at", name="uq_announcement_occurrence"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)
    # A recurring reminder's occurrences point at the reminder.
    parent_id: int | None = Field(default=None, foreign_key="announcement.id", index=True)
    author_id: int = Field(foreign_key="person.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    audience: str = Field(sa_column=Column(Text, nullable=False))
    audience_size: int = 0
    ack: bool = False
    urgent: bool = False
    multi: bool = False
    anonymous: bool = False
    local_time: bool = False
    category: str | None = Field(default=None, max_length=60)
    #: Audience members left out because they opted out of the category.
    opted_out: int = 0
    send_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True)
    )
    closes_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    every: str | None = Field(default=None, max_length=120)
    nudge_every: str | None = Field(default=None, max_length=120)
    nudges_sent: int = 0
    # escalate:DURATION: seconds after sending; people who have not acknowledged by
    # then also get it on their next linked platform (once, at escalated_at).
    escalate_after: int | None = None
    escalated_at: datetime | None = Field(default=None,
                                          sa_column=Column(UTCDateTime(), nullable=True))
    # For a recurring reminder's occurrence: the fire time it stands for.
    occurrence_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    status: str = Field(max_length=20, index=True)
    approved_by_id: int | None = Field(default=None, foreign_key="person.id")
    reject_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class PollOption(SQLModel, table=True):
    __tablename__ = "poll_option"
    __table_args__ = (UniqueConstraint("announcement_id", "position", name="uq_poll_option"),)

    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="announcement.id", index=True)
    position: int
    label: str = Field(max_length=300)


class Vote(SQLModel, table=True):
    """One chosen option of one person. For anonymous polls the person is kept
    only to know who answered; no output may join it to the option."""

    __tablename__ = "vote"
    __table_args__ = (UniqueConstraint("option_id", "person_id", name="uq_vote"),)

    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="announcement.id", index=True)
    option_id: int = Field(foreign_key="poll_option.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Delivery(SQLModel, table=True):
    """The durable outbox: one row per (announcement, person, platform, purpose)."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint(
            "announcement_id", "person_id", "platform", "purpose", name="uq_delivery"
        ),
        # Claiming: due rows of one platform, small messages (priority 0) first.
        Index("ix_delivery_claim", "platform", "status", "priority", "next_attempt_at", "id"),
        # Progress counts and "is anything still open" per announcement.
        Index("ix_delivery_progress", "announcement_id", "purpose", "status", "action"),
    )

    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="announcement.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    platform: str = Field(max_length=20)
    purpose: str = Field(default="announcement", max_length=20)
    # What the engine must do next: "send", or "update"/"delete" the sent message.
    action: str = Field(default="send", max_length=10)
    # 0: approval requests, outcomes, progress (go first); 1: bulk sends to an audience.
    priority: int = 0
    #: Held to a later day by the optional-message daily cap.
    held: bool = False
    address: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status: str = Field(max_length=20)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    leased_until: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    lease_owner: str | None = Field(default=None, max_length=80)
    message_ref: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    delivered_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class Receipt(SQLModel, table=True):
    """An acknowledgement: at most one per (announcement, person)."""

    __tablename__ = "receipt"
    __table_args__ = (UniqueConstraint("announcement_id", "person_id", name="uq_receipt"),)

    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="announcement.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # Where the person clicked (several copies: escalation, fallback); None if unknown.
    platform: str | None = Field(default=None, max_length=20)


class AuditEvent(SQLModel, table=True):
    """Append-only log of every transition: who, when, what, about whom.

    People appear by id only (``actor_id``, ``subject_id``, ``person#ID`` in
    ``detail``), so an erasure pseudonymizes the person row and no audit row changes.
    """

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    actor_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    announcement_id: int | None = Field(default=None, foreign_key="announcement.id", index=True)
    #: The person the event is about (a role change, an import, a privacy request).
    subject_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    action: str = Field(max_length=40)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class LinkFailure(SQLModel, table=True):
    """A wrong linking code, kept an hour to rate-limit the account that typed it.

    ``account_key`` is a hash of (platform, account): no chat account id is stored.
    """

    __tablename__ = "link_failure"

    id: int | None = Field(default=None, primary_key=True)
    account_key: str = Field(max_length=64, index=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class LegalHold(SQLModel, table=True):
    """A person whose data must be kept: a privacy erasure is refused while it exists."""

    __tablename__ = "legal_hold"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class AnnouncementTally(SQLModel, table=True):
    """The counts of an announcement's purged deliveries, receipts and votes.

    Retention moves counts here before it deletes the rows; status and reports add
    them to what is still stored, so their figures do not change.
    """

    __tablename__ = "announcement_tally"

    announcement_id: int = Field(foreign_key="announcement.id", primary_key=True)
    #: Delivery status -> count, as JSON.
    deliveries: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    acknowledged: int = 0
    answered: int = 0
    #: Poll option position -> votes, as JSON.
    votes: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    purged_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class OptOut(SQLModel, table=True):
    __tablename__ = "opt_out"
    __table_args__ = (UniqueConstraint("person_id", "category", name="uq_opt_out"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    category: str = Field(max_length=60)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class AuthorQuota(SQLModel, table=True):
    """The most recipients an author's announcements may reach in one day (set by admins)."""

    __tablename__ = "author_quota"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)
    daily_recipients: int
    set_by: str = Field(max_length=320)
    set_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ReportSubscription(SQLModel, table=True):
    __tablename__ = "report_subscription"
    __table_args__ = (UniqueConstraint("platform", "channel", name="uq_report_subscription"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    channel: str = Field(max_length=80)
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class InboundEvent(SQLModel, table=True):
    """Ids of inbound platform events already handled, so a retry has one effect."""

    __tablename__ = "inbound_event"
    __table_args__ = (UniqueConstraint("platform", "event_id", name="uq_inbound_event"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    event_id: str = Field(max_length=80)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LinkCode(SQLModel, table=True):
    """A one-time code that links a chat account to a directory person.

    Only a hash of the code is stored. ``attempts`` counts wrong guesses.
    """

    __tablename__ = "link_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=128, index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    platform: str = Field(max_length=20)
    platform_user_id: str | None = Field(default=None, max_length=80)
    purpose: str = Field(max_length=20)  # "invite" (admin-issued) | "verify" (sent to the person)
    attempts: int = 0
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class JobRun(SQLModel, table=True):
    """One run of a scheduled job for one fire time; the unique key makes it happen once."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job_id", "fire_time", name="uq_job_run"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=120)
    fire_time: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ran_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    late_seconds: int = 0
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Correction(SQLModel, table=True):
    """An edit of an announcement that was already approved. Recipients see the new
    text only once another approver has approved it (``status`` "approved")."""

    __tablename__ = "correction"

    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="announcement.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    # pending_approval | approved | rejected | superseded
    status: str = Field(max_length=20)
    editor_id: int = Field(foreign_key="person.id")
    decided_by_id: int | None = Field(default=None, foreign_key="person.id")
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Delivered messages queued for an in-place update when it was approved.
    targets: int = 0
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    decided_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class HealthCheck(SQLModel, table=True):
    """One row (id 1), rewritten by ``/healthz`` to prove the database takes writes."""

    __tablename__ = "health_check"

    id: int | None = Field(default=None, primary_key=True)
    checked_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class SyncCursor(SQLModel, table=True):
    """Where an incremental directory sync resumes (Microsoft Graph's delta link)."""

    __tablename__ = "sync_cursor"

    source: str = Field(primary_key=True, max_length=40)
    cursor: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class WorkerHeartbeat(SQLModel, table=True):
    """One row per running delivery engine, rewritten every few seconds; rows leased
    by an engine whose heartbeat is stale may be claimed at once (its process died)."""

    __tablename__ = "worker_heartbeat"

    owner: str = Field(primary_key=True, max_length=80)
    beat_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
