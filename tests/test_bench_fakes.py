"""The benchmarks' lean fake Slack answers the real slack_sdk clients as the full fake
does for a delivery worker, and counts what a benchmark reports (copies, duplicates)."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bench.lean_slack import MARKER, TOKEN, LeanSlack


async def test_the_async_client_posts_and_the_lean_fake_counts_copies_per_person():
    with LeanSlack() as fake:
        client = AsyncWebClient(token=TOKEN, base_url=fake.url)
        opened = await client.conversations_open(users="U00000001")
        channel = opened["channel"]["id"]
        assert channel == "D00000001"
        first = await client.chat_postMessage(channel=channel, text=f"{MARKER}: read",
                                              blocks=[{"type": "section", "text": {
                                                  "type": "mrkdwn", "text": "read"}}])
        await client.chat_postMessage(channel="U00000001", text=f"{MARKER}: read")
        await client.chat_postMessage(channel="U00000002", text=f"{MARKER}: read")
        await client.chat_postMessage(channel="U00000003", text="Sending… 3 of 3")
        await client.chat_update(channel=channel, ts=first["ts"], text="edited")
        stats = fake.stats()
    assert stats["posts"] == stats["ok"] == 4
    assert stats["people"] == 2 and stats["duplicates"] == 1


def test_a_wrong_token_or_a_post_without_text_is_refused_as_slack_does():
    with LeanSlack() as fake:
        with pytest.raises(SlackApiError) as refused:
            WebClient(token="xoxb-wrong", base_url=fake.url).chat_postMessage(
                channel="U1", text="hello")
        assert refused.value.response["error"] == "invalid_auth"
        with pytest.raises(SlackApiError) as empty, pytest.warns(UserWarning, match="text"):
            WebClient(token=TOKEN, base_url=fake.url).chat_postMessage(channel="U1", text="")
        assert empty.value.response["error"] == "no_text"
        assert fake.stats()["ok"] == 0
