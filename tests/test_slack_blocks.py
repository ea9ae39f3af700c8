"""Block Kit rendering: splitting without cutting, escaping, and Slack's size limits."""

from __future__ import annotations

import pytest

from announcements.limits import SLACK_SECTION_CHARS
from announcements.types import Button, OutboundMessage, PollChoice, PollView
from bot.slack.blocks import (
    BlockKitLimit,
    message_blocks,
    notification_text,
    payload,
    split_text,
    unescape,
)
from tests.fakes.slack_blocks import check_blocks


def test_split_prefers_paragraphs_then_lines_then_words():
    text = ("a" * 1800 + "\n\n" + "b" * 1800 + "\n" + "c" * 1800 + " " + "d" * 100)
    parts = split_text(text)
    assert "".join(parts) == text
    assert parts[0].endswith("\n\n") and parts[1].endswith("\n")
    assert all(len(p) <= SLACK_SECTION_CHARS for p in parts)


def test_a_word_longer_than_a_section_is_broken_but_never_inside_an_entity():
    word = ("x" * 2997) + "&amp;" + ("y" * 3000)
    parts = split_text(word)
    assert "".join(parts) == word
    assert all(len(p) <= SLACK_SECTION_CHARS for p in parts)
    assert parts[1].startswith("&amp;")  # the entity moved whole to the next section


def test_text_cannot_mention_everyone_or_forge_links():
    blocks = message_blocks(OutboundMessage(text="Hi <!channel> see <https://evil|docs> & more"))
    shown = blocks[0]["text"]["text"]
    assert shown == "Hi &lt;!channel&gt; see &lt;https://evil|docs&gt; &amp; more"
    assert unescape(shown) == "Hi <!channel> see <https://evil|docs> & more"


def test_too_many_blocks_is_refused_rather_than_cut():
    with pytest.raises(BlockKitLimit, match="at most 50"):
        message_blocks(OutboundMessage(text="word " * 40_000))


def test_labels_fit_buttons_and_polls_show_counts():
    long_label = "A very long option label " * 5
    message = OutboundMessage(
        text="Lunch?", title="Poll from Casey",
        poll=PollView("Lunch?", (PollChoice("vote:1:1", "Pizza", 3),
                                 PollChoice("vote:1:2", "Sushi", 1))),
        buttons=(Button("ack:1", long_label),))
    blocks = message_blocks(message)
    assert check_blocks(blocks) == []
    label = blocks[-1]["elements"][0]["text"]["text"]
    assert len(label) == 75 and label.endswith("…")
    shown = str(blocks)
    assert "3 votes (75%)" in shown and "1 vote (25%)" in shown
    closed = message_blocks(OutboundMessage(text="x", poll=PollView(
        "Lunch?", (PollChoice("vote:1:1", "Pizza", 3),), closed=True)))
    assert not any("accessory" in b for b in closed)


def test_notification_line_is_the_title_and_first_line_never_sent_a_message():
    message = OutboundMessage(title="Announcement from Casey",
                              text="\n*Office* closed Monday\nMore")
    assert notification_text(message) == "Announcement from Casey: Office closed Monday"
    assert payload(OutboundMessage(text="Just text"))["text"] == "Just text"
