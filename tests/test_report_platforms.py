"""The weekly report as Slack and Telegram show it: native blocks and HTML, never raw
Markdown, both as the `/crier report` answer and as the Monday post to a channel."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime

from sqlalchemy import select

from announcements import report_chart
from announcements.reports import weekly
from storage.models import Identity, Person
from tests.factories import ADMIN, COMMS
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_blocks import check_blocks, visible_text
from tests.fakes.slack_events import CASEY, SAM, slack_chat
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_world import TelegramWorld
from tests.harness import make_chat
from tests.test_report import scripted_week

PNG = b"\x89PNG\r\n\x1a\n"
MARKDOWN = re.compile(r"^#+ |\|")  # a heading or a table pipe
GROUP = -100_777


async def _week(db, clock) -> tuple[int, int, int]:
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))
    chat = make_chat(db, clock)
    return await scripted_week(chat, clock)


def _link(db, platform: str, users: dict[str, str]) -> None:
    with db.session() as s:
        ids = dict(s.execute(select(Person.email, Person.id)).tuples().all())
        for email, user in users.items():
            s.add(Identity(person_id=ids[email], platform=platform, platform_user_id=user,
                           linked_at=datetime(2026, 11, 1, tzinfo=UTC)))


def _no_markdown(text: str) -> None:
    assert not [line for line in text.splitlines() if MARKDOWN.search(line)], text


async def test_slack_shows_the_report_as_blocks_and_posts_it_with_the_chart(db, clock):
    policy, _, poll = await _week(db, clock)
    _link(db, "slack", {COMMS.email: CASEY, ADMIN.email: SAM})
    with FakeSlackAPI() as fake:
        async with slack_chat(db, clock, fake) as chat:
            answer = await chat.command(CASEY, "/crier", "report")
            [post] = answer.posts
            blocks = post["blocks"]
            assert check_blocks(blocks) == []  # Slack would accept them
            assert blocks[0] == {"type": "header", "text": {
                "type": "plain_text", "text": "Crier weekly report", "emoji": True}}
            fields = [f["text"] for b in blocks for f in b.get("fields", [])]
            assert "*Acknowledged*\n7 of 11 asked (64%)" in fields
            shown = visible_text(blocks)
            assert "*Engineering*  3 of 7 acknowledged · 43%" in shown
            assert f"*#{policy} New on-call policy*  4 of 7 have not acknowledged" in shown
            assert f"*Poll #{poll}: Offsite? (anonymous)*\n_3 of 11 answered_" in shown
            _no_markdown(shown)
            assert post["text"].startswith("Crier weekly report: 3 sent · 100% delivered")

            said = await chat.command(SAM, "/crier", "report subscribe", channel="C0REPORTS")
            assert "will get the weekly report" in said.text
            assert await chat.runtime.scheduler.post_weekly() == 1
            posted = fake.last("C0REPORTS")
            assert check_blocks(posted.blocks) == []
            assert "*Sales*  4 of 4 acknowledged · 100%" in posted.visible
            _no_markdown(posted.visible)
            [upload] = fake.uploads.values()
            assert upload["channel"] == "C0REPORTS" and upload["content"].startswith(PNG)


async def test_telegram_shows_the_report_as_html_and_posts_it_under_the_chart(db, clock):
    policy, _, _ = await _week(db, clock)
    casey, sam = 1001, 1004
    with FakeTelegramAPI() as api:
        with db.session() as s:
            ids = dict(s.execute(select(Person.email, Person.id)).tuples().all())
        async with TelegramWorld(api, db, clock, ids) as world:
            await world.link(COMMS.email, casey)
            await world.link(ADMIN.email, sam)
            [answer] = await world.say(casey, "/crier report")
            assert answer.html is not None
            assert answer.html.startswith("<b>Crier weekly report</b>\n\n"
                                          "<i>Fri 20 Nov – Fri 27 Nov 2026</i>\n\n<b>Summary</b>")
            assert "<b>Engineering</b> — 3 of 7 acknowledged · 43%" in answer.html
            assert "Acknowledged: <b>7 of 11 asked (64%)</b>" in answer.html
            assert f"<b>#{policy} New on-call policy</b> — 4 of 7 have not" in answer.html
            _no_markdown(answer.text or "")

            said = await world.say(sam, "/crier report subscribe", chat_id=GROUP)
            assert "will get the weekly report" in said[-1].text
            assert await world.runtime.scheduler.post_weekly() == 1
            posted = [m for m in api.chat(GROUP) if m.photo or "Crier weekly" in (m.text or "")]
            assert posted[0].photo is not None and posted[0].photo.startswith(PNG)
            caption = posted[0].html or ""
            assert caption.startswith("<b>Crier weekly report</b>")
            whole = "\n".join(m.text or "" for m in api.chat(GROUP)[-len(posted):])
            assert "Engineering — 3 of 7 acknowledged · 43%" in whole
            _no_markdown(whole)


async def test_the_chart_leaves_out_glyphs_no_font_draws_without_warnings(db, clock):
    chat = make_chat(db, clock)
    ann = await chat.approved("/announce to:Sales ack 🎉 新年 Kickoff ✅ agenda for the whole "
                              "sales team and everyone who joins in January")
    await chat.click("sales1@example.com", f"ack:{ann}")
    _, covered = report_chart._fonts()
    title = report_chart.short("🎉 新年 Kickoff ✅ agenda for the whole sales team and more")
    assert title.endswith("…") and len(title) <= report_chart.TITLE_CHARS
    assert "Kickoff" in title and all(ord(ch) in covered for ch in title)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = weekly(db, clock.now()).chart_png
    assert png is not None and png.startswith(PNG)
    assert [str(w.message) for w in caught] == []
