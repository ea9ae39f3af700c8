"""Requests Crier must refuse or recognise: forged, stale, repeated."""

from __future__ import annotations

import copy
import re
import time
from urllib.parse import urlencode

import pytest
from slack_bolt.middleware.request_verification.async_request_verification import (
    AsyncRequestVerification,
)
from sqlalchemy import func, select

from bot.app import build
from bot.settings import Settings
from bot.slack import SlackBot
from storage.models import Announcement, Receipt
from tests.fakes.slack_api import SIGNING_SECRET
from tests.fakes.slack_events import AVERY, CASEY, ENG, sign

ENG1 = ENG["eng1@example.com"]
COMMAND = urlencode({"team_id": "T0CRIER", "channel_id": "C0GENERAL", "user_id": CASEY,
                     "command": "/announce", "text": "to:all Forged announcement",
                     "response_url": "http://127.0.0.1:9/hooks/x", "trigger_id": "t"})


def announcements(slack) -> int:
    with slack.runtime.db.session() as s:
        return s.execute(select(func.count()).select_from(Announcement)).scalar_one()


@pytest.mark.parametrize("how", ["wrong secret", "tampered body", "stale", "future", "unsigned"])
async def test_forged_or_stale_requests_get_401_and_do_nothing(slack, how):
    now = int(time.time())
    body, stamp, signature = COMMAND, now, sign(COMMAND, now)
    if how == "wrong secret":
        signature = sign(COMMAND, now, secret="not-the-secret")
    elif how == "tampered body":
        body = COMMAND.replace("Forged", "Tampered")
    elif how == "stale":  # correctly signed, but older than Slack's 5-minute window
        stamp = now - 6 * 60
        signature = sign(COMMAND, stamp)
    elif how == "future":
        stamp = now + 6 * 60
        signature = sign(COMMAND, stamp)
    else:
        signature = ""
    response = await slack.post(body, timestamp=stamp, signature=signature)
    assert response.status_code == 401
    assert slack.fake.calls == []  # not even auth.test: nothing reached Slack
    assert announcements(slack) == 0


async def test_a_fresh_signed_request_within_the_window_is_accepted(slack):
    response = await slack.post(COMMAND, timestamp=int(time.time()) - 4 * 60)
    assert response.status_code == 200
    assert announcements(slack) == 1


async def test_slack_can_verify_the_request_url_from_the_manifest(slack):
    body = '{"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}'  # noqa: E501
    response = await slack.post(body, "application/json")
    assert response.status_code == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in response.text
    forged = await slack.post(body, "application/json", signature="v0=forged")
    assert forged.status_code == 401


def test_verification_cannot_be_turned_off(db, clock):
    settings = Settings(database_url=str(db.url), slack_bot_token="xoxb-1")
    runtime = build(settings, {}, clock=clock, db=db)
    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET is not set"):
        SlackBot(runtime)
    runtime.settings = Settings(database_url=str(db.url), slack_bot_token="xoxb-1",
                                slack_signing_secret=SIGNING_SECRET)
    bot = SlackBot(runtime)
    assert any(isinstance(m, AsyncRequestVerification) for m in bot.app._async_middleware_list)
    assert "request_verification_enabled" not in SlackBot.__init__.__code__.co_varnames


async def test_a_double_clicked_button_has_one_effect(slack):
    preview = await slack.command(CASEY, "/announce", "to:Engineering ack Fire drill at 3pm")
    ann = re.search(r"submit:(\d+)", " ".join(preview.actions)).group(1)
    await slack.click_ephemeral(CASEY, f"submit:{ann}", preview)
    await slack.deliver()
    await slack.click(AVERY, f"approve:{ann}")
    await slack.deliver()

    message = slack.fake.holding(ENG1, f"ack:{ann}")
    as_shown = copy.deepcopy(message)  # both presses land before the button disappears
    first = await slack.click(ENG1, f"ack:{ann}", as_shown, action_ts=2000.10)
    second = await slack.click(ENG1, f"ack:{ann}", as_shown, action_ts=2000.45)
    assert "✓ Acknowledged" in first.text
    assert second.posts == []  # nothing more shown
    updates = [c for c in slack.fake.requests("chat.update") if c.params.get("ts") == message.ts]
    assert len(updates) == 1
    with slack.runtime.db.session() as s:
        assert s.execute(select(func.count()).select_from(Receipt)).scalar_one() == 1

    # A press much later (from a screen that was not refreshed) is a new press.
    again = await slack.click(ENG1, f"ack:{ann}", as_shown, action_ts=2030.0)
    assert "Already acknowledged" in again.text


async def test_a_double_submitted_approval_decides_once(slack):
    preview = await slack.command(CASEY, "/announce", "to:Sales Price list update")
    ann = re.search(r"submit:(\d+)", " ".join(preview.actions)).group(1)
    await slack.click_ephemeral(CASEY, f"submit:{ann}", preview)
    await slack.deliver()
    request = copy.deepcopy(slack.fake.holding(AVERY, f"approve:{ann}"))
    first = await slack.click(AVERY, f"approve:{ann}", request, action_ts=3000.9)
    second = await slack.click(AVERY, f"approve:{ann}", request, action_ts=3001.2)  # next second
    assert f"Approved #{ann}" in first.text and second.posts == []
    assert await slack.deliver() == 4 + 1 + 1  # Sales, the outcome, Sam's request updated
    assert len([m for m in slack.dm(CASEY) if "was approved" in m.visible]) == 1
