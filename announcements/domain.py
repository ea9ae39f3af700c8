"""What every room of the domain shares: the database, the clock, the settings
it was built with and the bus its events go out on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from announcements.categories import DEFAULT_OPTIONAL_DAILY_CAP, Categories
from announcements.clock import Clock, SystemClock
from announcements.delivery.fanout import Channels
from announcements.events import EventBus
from announcements.quiet import QuietHours
from storage.db import Database

#: The shortest repeat of a recurring send unless ``CRIER_MIN_INTERVAL`` says otherwise.
DEFAULT_MIN_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True)
class DomainConfig:
    """The domain's settings, fixed when the application is built."""

    channels: Channels = Channels()  # noqa: RUF009 - frozen
    quiet: QuietHours | None = QuietHours()  # noqa: RUF009 - frozen
    #: Most nudges one acknowledgement request sends to one person.
    nudge_max: int = 3
    #: Recurring sends (``every:``, ``remind:``) repeat no more often than this.
    min_interval: timedelta = DEFAULT_MIN_INTERVAL
    #: The message categories (``CRIER_CATEGORIES``) and which are mandatory.
    categories: Categories = Categories.parse()  # noqa: RUF009 - frozen
    #: Most optional-category messages one person gets in one of their days.
    optional_daily_cap: int = DEFAULT_OPTIONAL_DAILY_CAP


@dataclass(frozen=True)
class Domain:
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    config: DomainConfig = field(default_factory=DomainConfig)
    events: EventBus = field(default_factory=EventBus)
