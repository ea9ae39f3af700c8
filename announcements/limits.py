"""Every size limit, with the platform rule it comes from. Defined once here and
imported by the grammar, the domain and the adapters."""

from __future__ import annotations

#: Longest announcement text. Microsoft Teams rejects a message over about 28 KB
#: and an Adaptive Card adds overhead; 10,000 characters of mixed scripts stays
#: under it. Slack (40,000) and Telegram (4,096 per message, split by Crier)
#: allow more, so Teams sets the bound.
MAX_TEXT_CHARS = 10_000
MAX_TEXT_REASON = (
    "Microsoft Teams rejects messages over about 28 KB, the smallest limit of the "
    "platforms Crier sends to"
)

#: A poll needs at least two options; Telegram's native polls allow at most 10.
MIN_POLL_OPTIONS = 2
MAX_POLL_OPTIONS = 10
#: Telegram poll questions: 1-300 characters.
MAX_POLL_QUESTION_CHARS = 300
#: Slack button labels are cut at 75 characters; Telegram options allow 100.
MAX_POLL_OPTION_CHARS = 75

#: Slack section blocks take 3,000 characters each; Telegram messages 4,096.
SLACK_SECTION_CHARS = 3_000
SLACK_MAX_BLOCKS = 50
TELEGRAM_MESSAGE_CHARS = 4_096
#: Telegram's callback_data is at most 64 bytes.
TELEGRAM_CALLBACK_BYTES = 64

#: Rejection reasons and category names.
MAX_REASON_CHARS = 500
MAX_CATEGORY_CHARS = 60

#: Largest announcement or button id: ids are INTEGER columns, 32-bit signed on
#: PostgreSQL (SQLite's are 64-bit), so a larger id cannot exist and cannot even be
#: compared there ("integer out of range"). Raise it with a migration to BIGINT.
MAX_ID = 2**31 - 1

#: Longest delay, duration or repeat interval a command may ask for (``at:in …``,
#: ``remind:``, ``every:``): a year is beyond any announcement's useful life and
#: keeps every date Crier computes far inside what Python and the databases hold.
MAX_DURATION_DAYS = 366
#: Dates a command may name (``at:2026-12-01 09:00``): from 2000 to 2100.
MIN_YEAR = 2000
MAX_YEAR = 2100

#: ``crier report --days`` and ``crier export --days``: at most ten years back,
#: far more than any database here holds and far inside what dates can hold.
MAX_REPORT_DAYS = 3660
