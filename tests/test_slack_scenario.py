"""The foundation scenario over Slack's wire format: signed requests in, Web API bodies out."""

from __future__ import annotations

import re

import pytest

from tests.factories import company, seed
from tests.fakes.slack_api import FakeSlackAPI, dm
from tests.fakes.slack_events import AVERY, CASEY, ENG, ERIN, identities, slack_chat


@pytest.fixture
async def slack(db, clock):
    seed(db, clock, company(), identities())
    with FakeSlackAPI() as fake:
        # Paced as in production: at most one message per second per conversation.
        async with slack_chat(db, clock, fake, paced=True) as chat:
            yield chat


async def test_draft_approve_deliver_acknowledge_status(slack):
    fake = slack.fake
    preview = await slack.command(CASEY, "/announce", "to:Engineering ack Please read the new "
                                                      "on-call policy &amp; rota")
    assert "will reach 7 people: Engineering 7" in preview.text
    assert "Please read the new on-call policy & rota" in preview.text
    post = preview.posts[-1]
    assert post["response_type"] == "ephemeral"  # only the author sees the preview
    ann = re.search(r"submit:(\d+)", " ".join(preview.actions)).group(1)
    assert preview.actions == [f"submit:{ann}", f"discard:{ann}"]

    submitted = await slack.click_ephemeral(CASEY, f"submit:{ann}", preview)
    assert submitted.posts[-1]["replace_original"] is True
    assert "Sent to 3 approvers" in submitted.text
    assert await slack.deliver() == 3  # Avery (*), Erin (Engineering), Sam (admin)

    request = fake.holding(AVERY, f"approve:{ann}")
    assert request.channel == dm(AVERY)
    assert "Casey Morgan asks you to approve" in request.visible
    assert request.actions == [f"approve:{ann}", f"reject:{ann}"]
    assert request.blocks[0]["type"] == "header"
    assert {b["type"] for b in request.blocks} >= {"header", "section", "context", "actions"}

    approved = await slack.click(AVERY, f"approve:{ann}", request)
    assert f"Approved #{ann}: it goes to 7 people" in approved.text  # ephemeral to Avery
    updated = fake.messages(AVERY)[-1]
    assert updated.ts == request.ts and updated.updates == 1  # chat.update, same message
    assert "approved by Avery Chen" in updated.visible and updated.actions == []

    # 7 recipients, the outcome to the author, the two other approvers' requests updated.
    assert await slack.deliver() == 10
    assert "approved by Avery Chen" in fake.messages(ERIN)[0].visible
    assert fake.messages(ERIN)[0].actions == []
    assert any(f"Announcement #{ann} was approved by Avery Chen" in m.visible
               for m in fake.messages(CASEY))

    for uid in (ENG["eng1@example.com"], ENG["eng2@example.com"], ERIN):
        got = fake.holding(uid, f"ack:{ann}")
        assert "Please read the new on-call policy &amp; rota" in str(got.blocks)
        assert "Please read the new on-call policy & rota" in got.visible
        assert got.text.startswith("Announcement from Casey Morgan: Please read")
        assert "sent a message" not in got.text
        button = next(e for b in got.blocks if b["type"] == "actions" for e in b["elements"])
        assert button["text"]["text"] == "Got it" and button["value"] == f"ack:{ann}"
    assert fake.messages("U301") == []  # the inactive engineer
    assert fake.messages("U201") == []  # sales

    eng1 = ENG["eng1@example.com"]
    message = fake.holding(eng1, f"ack:{ann}")
    answer = await slack.click(eng1, f"ack:{ann}", message, action_ts=1000.0)
    assert "✓ Acknowledged" in answer.text
    acked = fake.messages(eng1)[-1]
    assert acked.ts == message.ts and acked.updates == 1
    assert "✓ Acknowledged" in acked.visible and acked.actions == []
    chat_updates = [c for c in fake.requests("chat.update") if c.params["ts"] == message.ts]
    assert len(chat_updates) == 1 and "✓ Acknowledged" in str(chat_updates[0].params["blocks"])

    await slack.click(ENG["eng2@example.com"], f"ack:{ann}")

    status = await slack.command(CASEY, "/crier", f"status {ann}")
    assert "Acknowledged 2 of 7" in status.text
    assert "Engineering: 2 of 7 acknowledged" in status.text
    assert "Sent 7 of 7" in status.text


async def test_reject_asks_for_a_reason_in_a_modal(slack):
    fake = slack.fake
    preview = await slack.command(CASEY, "/announce", "to:Sales Quarter close on Friday")
    ann = re.search(r"submit:(\d+)", " ".join(preview.actions)).group(1)
    await slack.click_ephemeral(CASEY, f"submit:{ann}", preview)
    await slack.deliver()

    request = fake.holding(AVERY, f"reject:{ann}")
    await slack.click(AVERY, f"reject:{ann}", request)
    modal = fake.opened_views()[-1]
    assert modal["callback_id"] == "crier_reject"
    assert modal["title"]["text"] == "Reject"

    empty = await slack.submit(AVERY, modal, {"reason": {"value": {"value": ""}}})
    assert empty.json() == {"response_action": "errors",
                            "errors": {"reason": "Say why, so the author knows what to change."}}
    assert "rejected" not in fake.messages(AVERY)[-1].visible

    done = await slack.submit(AVERY, modal, {"reason": {"value": {"value": "Needs a date"}}})
    assert done.status_code == 200 and done.content in (b"", b"{}")
    assert "rejected by Avery Chen" in fake.messages(AVERY)[-1].visible
    assert fake.messages(AVERY)[-1].actions == []
    await slack.deliver()
    outcome = fake.messages(CASEY)[-1].visible
    assert f"Announcement #{ann} was rejected by Avery Chen" in outcome
    assert "Reason: Needs a date" in outcome


async def test_poll_shows_choices_and_live_counts(slack):
    fake = slack.fake
    preview = await slack.command(CASEY, "/poll", 'to:Engineering "Lunch on Friday?" "Pizza" '
                                                  '"Sushi"')
    ann = re.search(r"submit:(\d+)", " ".join(preview.actions)).group(1)
    await slack.click_ephemeral(CASEY, f"submit:{ann}", preview)
    await slack.deliver()
    await slack.click(AVERY, f"approve:{ann}")
    await slack.deliver()

    eng1 = ENG["eng1@example.com"]
    poll = fake.holding(eng1, f"vote:{ann}:1")
    assert poll.actions == [f"vote:{ann}:1", f"vote:{ann}:2"]
    assert "Pizza" in poll.visible and "Sushi" in poll.visible
    assert poll.text.endswith("Lunch on Friday?")

    answer = await slack.click(eng1, f"vote:{ann}:2", poll)
    assert f"Your answer to #{ann}: Sushi" in answer.text
    counted = fake.messages(eng1)[-1]
    assert counted.ts == poll.ts
    assert "1 vote (100%)" in counted.visible and "0 votes (0%)" in counted.visible


async def test_unknown_user_gets_a_polite_answer(slack):
    shown = await slack.command("U999", "/announce", "to:all Hello")
    assert "not in Crier's directory" in shown.text
    assert slack.fake.requests("chat.postMessage") == []
    shown = await slack.command("U999", "/announce")  # no modal for strangers either
    assert "not in Crier's directory" in shown.text
    assert slack.fake.opened_views() == []


async def test_unlinked_member_is_linked_by_their_slack_email(slack):
    slack.fake.add_user("U777", "sales1@example.com", "Seller One")
    with slack.runtime.db.session() as s:
        from sqlalchemy import delete

        from storage.models import Identity

        s.execute(delete(Identity).where(Identity.platform_user_id == "U201"))
    shown = await slack.command("U777", "/crier", "whoami")
    assert "Seller 1 <sales1@example.com>" in shown.text
    assert "slack (U777)" in shown.text


async def test_the_authors_progress_message_is_updated_in_place(db, clock):
    seed(db, clock, company(), identities())
    extra = {"CRIER_PROGRESS_MIN_RECIPIENTS": "1", "CRIER_PROGRESS_INTERVAL": "0"}
    with FakeSlackAPI() as fake:
        async with slack_chat(db, clock, fake, extra=extra) as slack:
            fake.make_unreachable(ENG["eng4@example.com"], "account_inactive")
            preview = await slack.command(CASEY, "/announce", "to:Engineering ack Office move")
            ann = re.search(r"submit:(\d+)", " ".join(preview.actions)).group(1)
            await slack.click_ephemeral(CASEY, f"submit:{ann}", preview)
            await slack.deliver()
            await slack.click(AVERY, f"approve:{ann}")
            await slack.deliver()

            progress = [m for m in fake.messages(CASEY) if f"Announcement #{ann} —" in m.visible]
            assert len(progress) == 1  # one status message, kept up to date with chat.update
            assert progress[0].updates >= 1
            final = progress[0].visible
            assert "Sent 6 of 7 · failed 0 · unreachable 1 · pending 0" in final
            assert "100%" in final and "— sent" in final


async def test_every_command_answers_only_the_person_who_typed_it(slack):
    # /remind is Slack's own command: reminders are typed after /crier.
    reminder = await slack.command(CASEY, "/crier",
                                   "remind to:Engineering every:mon 09:00 Timesheets")
    assert "Preview of Reminder #1" in reminder.text and "Sends: every mon 09:00" in reminder.text
    helped = await slack.command(ERIN, "/crier", "")
    assert "/announce [to:AUDIENCE]" in helped.text and "/crier help" in helped.text
    wrong = await slack.command(CASEY, "/announce", "to:Enginering Hello")
    assert "✗ unknown department `Enginering`" in wrong.text and "Engineering" in wrong.text
    for shown in (reminder, helped, wrong):
        assert all(p["response_type"] == "ephemeral" for p in shown.posts)
    assert slack.fake.requests("chat.postMessage") == []  # nothing went to a channel
