"""The foundation scenario over Telegram's wire format: link -> draft -> approve with
an inline button -> receive -> Got it -> vote on a native poll -> status shows both."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from storage.models import PollOption, Vote
from tests.factories import COMMS, seed
from tests.fakes.telegram_world import AVERY, CASEY, ENG1, ENG2, ERIN, TelegramWorld


def answers(world: TelegramWorld, ann: int) -> dict[int, list[int]]:
    """person id -> the option positions they chose."""
    with world.db.session() as s:
        rows = s.execute(select(Vote.person_id, PollOption.position)
                         .join(PollOption, PollOption.id == Vote.option_id)
                         .where(Vote.announcement_id == ann)
                         .order_by(PollOption.position)).tuples().all()
    chosen: dict[int, list[int]] = {}
    for person, position in rows:
        chosen.setdefault(person, []).append(position)
    return chosen


def announcement_id(text: str | None) -> int:
    match = re.search(r"#(\d+)", text or "")
    assert match, text
    return int(match.group(1))


async def test_start_registers_commands_and_links_with_an_invite(db, clock, api):
    seed(db, clock)
    async with TelegramWorld(api, db, clock, {}) as w:
        commands = [c["command"] for c in api.requests("setMyCommands")[-1].params["commands"]]
        assert commands == ["start", "announce", "poll", "remind", "crier", "unlink"]

        said = await w.link(COMMS.email, CASEY)
        assert said[-1].text.startswith("✓ Linked: this Telegram account is now Casey Morgan")
        said = await w.say(CASEY, "/crier whoami")
        assert "Linked: telegram (1001)" in said[-1].text

        said = await w.say(CASEY, "/unlink")
        assert "no longer gets Crier messages for casey.comms@example.com" in said[-1].text
        said = await w.say(CASEY, "/crier whoami")
        assert "only /start works" in said[-1].text


async def test_draft_approve_receive_ack_vote_status(world: TelegramWorld, api):
    # The author drafts in a private chat; the preview comes with Submit / Cancel.
    said = await world.say(CASEY, "/announce to:Engineering ack Please read the new "
                                  "on-call policy")
    preview = said[-1]
    assert "will reach 7 people: Engineering 7" in preview.text
    ann = announcement_id(preview.text)
    assert preview.buttons == [("Submit for approval", f"submit:{ann}"),
                               ("Cancel", f"discard:{ann}")]

    answer = await world.click(CASEY, preview, f"submit:{ann}")
    assert answer["text"] == f"Announcement #{ann} submitted"
    submitted = api.find(CASEY, preview.message_id)
    assert submitted is not None and "Sent to 3 approvers" in (submitted.text or "")
    assert submitted.buttons == []

    # Avery and Erin are linked on Telegram; the admin is not, so hers is unreachable.
    await world.drain()
    request = world.holding(AVERY, f"approve:{ann}")
    assert "Casey Morgan asks you to approve" in request.text
    assert request.buttons == [("Approve", f"approve:{ann}"), ("Reject", f"reject:{ann}")]

    answer = await world.click(AVERY, request, f"approve:{ann}")
    assert "it goes to 7 people" in answer["text"]
    decided = api.find(AVERY, request.message_id)
    assert decided.text.startswith(f"Announcement #{ann}: approved by Avery Chen")
    assert decided.buttons == []

    await world.drain()
    # Erin's request no longer offers buttons; the author hears the outcome.
    erin = [m for m in world.chat(ERIN) if f"#{ann}" in (m.text or "")]
    assert erin and erin[-1].buttons == [] and "approved by Avery Chen" in erin[-1].text
    assert any(f"Announcement #{ann} was approved by Avery Chen" in (m.text or "")
               for m in world.chat(CASEY))

    # Recipients get HTML with a Got it button.
    got = world.holding(ENG1, f"ack:{ann}")
    assert got.html.startswith("<b>Announcement from Casey Morgan</b>")
    assert "Please read the new on-call policy" in got.text
    assert got.buttons == [("Got it", f"ack:{ann}")]

    answer = await world.click(ENG1, got, f"ack:{ann}")
    assert answer["text"] == f"✓ Acknowledged #{ann}."
    acked = api.find(ENG1, got.message_id)
    assert acked.buttons == [("✓ Acknowledged", f"ack:{ann}")]
    assert "✓ Acknowledged Fri 2026-11-27" in acked.text
    answer = await world.click(ENG1, acked, f"ack:{ann}")
    assert answer["text"] == f"✓ Already acknowledged #{ann}."

    # A native poll.
    said = await world.say(CASEY, '/poll to:Engineering multi "Team lunch?" "Pizza" "Sushi" '
                                  '"Tacos"')
    poll_ann = announcement_id(said[-1].text)
    await world.click(CASEY, said[-1], f"submit:{poll_ann}")
    await world.drain()
    await world.click(AVERY, world.holding(AVERY, f"approve:{poll_ann}"),
                      f"approve:{poll_ann}")
    await world.drain()

    sent = [c.params for c in api.requests("sendPoll") if c.params["chat_id"] == ENG1]
    assert len(sent) == 1
    assert sent[0]["question"] == "Team lunch?"
    assert [o["text"] for o in sent[0]["options"]] == ["Pizza", "Sushi", "Tacos"]
    assert sent[0]["is_anonymous"] is False and sent[0]["allows_multiple_answers"] is True
    poll1 = [m for m in world.chat(ENG1) if m.poll][-1].poll
    poll2 = [m for m in world.chat(ENG2) if m.poll][-1].poll
    intro = world.chat(ENG1)[-2]
    assert intro.text.startswith("Poll from Casey Morgan") and "choose all that apply" in intro.text

    await world.vote(ENG1, poll1["id"], [1, 2])  # Sushi and Tacos
    await world.vote(ENG2, poll2["id"], [0])
    await world.vote(ENG2, poll2["id"], [])  # retracted
    assert answers(world, poll_ann) == {world.ids["eng1@example.com"]: [2, 3]}

    status = (await world.say(CASEY, f"/crier status {ann}"))[-1].text
    assert "Acknowledged 1 of 7" in status
    assert "Engineering: 1 of 7 acknowledged" in status
    # eng3..eng6 never linked Telegram: counted as unreachable, not forgotten.
    assert "Sent 3 of 7 · failed 0 · unreachable 4 · pending 0" in status

    status = (await world.say(CASEY, f"/crier status {poll_ann}"))[-1].text
    assert "Answers: 1 of 7 people" in status
    assert "1. Pizza: 0" in status and "2. Sushi: 1" in status and "3. Tacos: 1" in status


async def test_single_choice_vote_replaces_and_closing_stops_the_poll(world: TelegramWorld,
                                                                      api, clock):
    said = await world.say(CASEY, '/poll to:@eng1@example.com closes:in 2h "Parking?" "Yes" "No"')
    ann = announcement_id(said[-1].text)
    await world.click(CASEY, said[-1], f"submit:{ann}")
    await world.drain()
    await world.click(AVERY, world.holding(AVERY, f"approve:{ann}"), f"approve:{ann}")
    await world.drain()
    poll_message = [m for m in world.chat(ENG1) if m.poll][-1]
    assert poll_message.poll["allows_multiple_answers"] is False

    await world.vote(ENG1, poll_message.poll["id"], [0])
    world.platform.polls.clear()  # as if another process had sent the poll: found by its ref
    await world.vote(ENG1, poll_message.poll["id"], [1])
    assert answers(world, ann) == {world.ids["eng1@example.com"]: [2]}

    # When the poll closes, the native poll is stopped (stopPoll) and late answers refused.
    clock.advance(timedelta(hours=2))
    await world.runtime.scheduler.run_due()
    await world.drain()
    stopped = api.requests("stopPoll")
    assert [(c.params["chat_id"], c.params["message_id"]) for c in stopped] == [
        (ENG1, poll_message.message_id)]
    assert api.poll(poll_message.poll["id"]).poll["is_closed"] is True
    shown = world.chat(ENG1)
    intro = shown[[m.message_id for m in shown].index(poll_message.message_id) - 1]
    assert intro.text.startswith("Poll from Casey Morgan") and "this poll is closed" in intro.text
    await world.vote(ENG1, poll_message.poll["id"], [0])
    assert world.chat(ENG1)[-1].text == f"✗ poll #{ann} is closed; answers are no longer taken"
    assert answers(world, ann) == {world.ids["eng1@example.com"]: [2]}
    status = (await world.say(CASEY, f"/crier status {ann}"))[-1].text
    assert "1. Yes: 0" in status and "2. No: 1" in status
