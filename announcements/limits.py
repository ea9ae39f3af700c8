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

#: Announcement, option and edit ids are positive 63-bit integers (a BIGINT and
#: SQLite's INTEGER hold no more); anything else is not an id Crier ever issued.
MAX_ID = 2**63 - 1
