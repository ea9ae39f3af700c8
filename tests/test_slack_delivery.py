"""Slack's refusals as the delivery engine sees them, long texts, and the report upload."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from announcements.limits import MAX_TEXT_CHARS, SLACK_SECTION_CHARS
from announcements.ports import (
    Attachment,
    PermanentError,
    RateLimited,
    TransientError,
    Unreachable,
)
from announcements.types import Button, DeliveryStatus, OutboundMessage, Purpose
from bot.settings import Settings
from bot.slack import make_platform
from bot.slack.blocks import unescape
from storage.models import Delivery
from tests.factories import company, seed
from tests.fakes.slack_api import FakeSlackAPI, dm
from tests.fakes.slack_events import AVERY, CASEY, ENG, identities, slack_chat

ENG1, ENG2, ENG3 = ENG["eng1@example.com"], ENG["eng2@example.com"], ENG["eng3@example.com"]


@pytest.fixture
def fake():
    with FakeSlackAPI() as api:
        yield api


@pytest.fixture
async def slack(db, clock, fake):
    seed(db, clock, company(), identities())
    async with slack_chat(db, clock, fake) as chat:
        yield chat


@pytest.fixture
async def platform(fake):
    p = make_platform(Settings(slack_bot_token=fake.token, slack_signing_secret="s",
                               slack_api_url=fake.url))
    yield p
    await p.aclose()


async def approve(slack, line: str) -> int:
    preview = await slack.command(CASEY, "/announce", line)
    ann = int(re.search(r"submit:(\d+)", " ".join(preview.actions)).group(1))
    await slack.click_ephemeral(CASEY, f"submit:{ann}", preview)
    await slack.deliver()
    await slack.click(AVERY, f"approve:{ann}")
    return ann


def rows(slack, ann: int) -> dict[int, Delivery]:
    with slack.runtime.db.session() as s:
        found = s.execute(select(Delivery).where(
            Delivery.announcement_id == ann,
            Delivery.purpose == Purpose.ANNOUNCEMENT.value)).scalars().all()
    return {r.person_id: r for r in found}


def row_for(slack, ann: int, uid: str) -> Delivery:
    from storage.models import Identity

    with slack.runtime.db.session() as s:
        pid = s.execute(select(Identity.person_id).where(
            Identity.platform_user_id == uid)).scalar_one()
    return rows(slack, ann)[pid]


async def test_slack_errors_become_retries_or_unreachable(slack, fake):
    fake.make_unreachable(ENG1, "account_inactive")
    fake.make_unreachable(ENG2, "channel_not_found")
    fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=1, channel=ENG3)
    ann = await approve(slack, "to:Engineering ack Badge photos on Monday")
    await slack.deliver()

    for uid, error in ((ENG1, "account_inactive"), (ENG2, "channel_not_found")):
        row = row_for(slack, ann, uid)
        assert row.status == DeliveryStatus.UNREACHABLE
        assert error in (row.error or "")
    limited = row_for(slack, ann, ENG3)
    assert limited.status == DeliveryStatus.PENDING and "ratelimited" in (limited.error or "")
    assert limited.attempts == 0  # a 429 does not use up an attempt
    assert limited.next_attempt_at == slack.clock.now() + timedelta(seconds=1)
    assert fake.messages(ENG3) == []
    assert fake.early_requests == 0  # nothing was sent to Slack inside the Retry-After

    slack.clock.advance(timedelta(seconds=1))
    await slack.deliver()
    assert fake.early_requests == 0
    assert row_for(slack, ann, ENG3).status == DeliveryStatus.DELIVERED
    assert fake.last(ENG3).actions == [f"ack:{ann}"]
    # The unreachable are not tried again.
    posts_to = [c.params["channel"] for c in fake.requests("chat.postMessage")]
    assert posts_to.count(ENG1) == 1 and posts_to.count(ENG2) == 1


async def test_a_slack_outage_is_retried(slack, fake):
    fake.fail("chat.postMessage", status=503, channel=ENG1)
    ann = await approve(slack, "to:Engineering Parking closed Friday")
    await slack.deliver()
    row = row_for(slack, ann, ENG1)
    assert row.status == DeliveryStatus.PENDING and "503" in (row.error or "")
    slack.clock.advance(timedelta(minutes=10))
    await slack.deliver()
    assert row_for(slack, ann, ENG1).status == DeliveryStatus.DELIVERED
    assert "Parking closed Friday" in fake.last(ENG1).visible


async def test_a_long_announcement_is_split_into_sections_never_cut(slack, fake):
    paragraph = ("Our travel policy changes on the first of the month & applies to <everyone>. "
                 * 40).strip()
    text = "\n\n".join(f"{n}. {paragraph}" for n in range(1, 4))
    assert len(text) > 2 * SLACK_SECTION_CHARS
    ann = await approve(slack, f"to:Engineering {text}")
    await slack.deliver()
    message = fake.last(ENG1)
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert len(sections) >= 3
    assert all(len(s) <= SLACK_SECTION_CHARS for s in sections)
    assert unescape("".join(sections)) == text  # every character is there, in order
    assert "<everyone>" not in str(message.blocks)  # escaped: no mention, no link
    assert row_for(slack, ann, ENG1).status == DeliveryStatus.DELIVERED


async def test_the_longest_text_crier_accepts_fits_in_one_slack_message(platform, fake):
    word = "announcement & <policy> "
    text = (word * (MAX_TEXT_CHARS // len(word)))[:MAX_TEXT_CHARS].strip()
    ref = await platform.send("U101", OutboundMessage(text=text, title="Long"))
    sent = fake.last("U101")
    assert ref == f"{dm('U101')}:{sent.ts}"
    sections = [b["text"]["text"] for b in sent.blocks if b["type"] == "section"]
    assert unescape("".join(sections)) == text


async def test_what_slack_cannot_show_is_refused_not_cut(platform, fake):
    with pytest.raises(PermanentError, match="needs 5[0-9] blocks; Slack shows at most 50"):
        await platform.send("U101", OutboundMessage(text="x " * 80_000))
    assert fake.requests("chat.postMessage") == []
    fake.fail("chat.postMessage", "invalid_blocks")
    with pytest.raises(PermanentError, match="invalid_blocks"):
        await platform.send("U101", OutboundMessage(text="hi", buttons=(Button("ack:1", "Ok"),)))
    fake.fail("chat.postMessage", "msg_too_long")
    with pytest.raises(PermanentError, match="msg_too_long"):
        await platform.send("U101", OutboundMessage(text="hi"))


async def test_platform_errors_map_to_engine_errors(platform, fake):
    assert platform.client.retry_handlers == []  # the engine decides about retries
    fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=7)
    with pytest.raises(RateLimited) as limited:
        await platform.send("U101", OutboundMessage(text="hi"))
    assert limited.value.retry_after == 7
    fake.fail("chat.postMessage", status=500)
    with pytest.raises(TransientError):
        await platform.send("U101", OutboundMessage(text="hi"))
    fake.fail("chat.postMessage", "user_not_found")
    with pytest.raises(Unreachable):
        await platform.send("U101", OutboundMessage(text="hi"))
    assert [c.error for c in fake.requests("chat.postMessage")] == [
        "ratelimited", "internal_error", "user_not_found"]


async def test_update_and_delete_use_the_stored_reference(platform, fake):
    ref = await platform.send("U102", OutboundMessage(text="Draft text", title="Notice"))
    await platform.update("U102", ref, OutboundMessage(text="Corrected text", title="Notice"))
    message = fake.last("U102")
    assert "Corrected text" in message.visible and message.updates == 1
    await platform.delete("U102", ref)
    assert fake.messages("U102") == []
    await platform.update("U102", ref, OutboundMessage(text="again"))  # gone: nothing to do
    await platform.delete("U102", ref)


async def test_report_is_posted_with_its_chart_uploaded(platform, fake):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    report = OutboundMessage(title="Crier weekly report", text="Sent 4 announcements.")
    ref = await platform.post_report("C0REPORTS", report, Attachment("ack-rates.png", png))
    assert ref.startswith("C0REPORTS:")
    assert "Sent 4 announcements." in fake.last("C0REPORTS").visible
    [upload] = fake.uploads.values()
    assert upload["content"] == png and upload["filename"] == "ack-rates.png"
    assert upload["channel"] == "C0REPORTS" and upload["title"] == "Crier weekly report"
    assert [c.method for c in fake.calls] == [
        "chat.postMessage", "files.getUploadURLExternal", "files.completeUploadExternal"]


def test_default_limits_follow_slacks_posting_rules():
    p = make_platform(Settings(slack_bot_token="xoxb-1", slack_signing_secret="s"))
    assert p.limits.per_conversation == 1.0  # one message per second per conversation
    assert 0 < p.limits.per_second <= 10  # "several hundred per minute" per workspace
