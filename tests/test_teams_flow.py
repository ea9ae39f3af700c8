"""Teams end to end over the Bot Framework wire format: commands typed with or
without the slash, cards refreshed in place, the Action.Submit fallback, the
reason a rejection needs, conversation references and people who never
installed the app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from storage.models import Delivery, Identity
from tests.factories import APPROVER, COMMS, company, seed
from tests.fakes.teams_world import TeamsWorld, aad, teams_world

ENG1, ENG2 = "eng1@example.com", "eng2@example.com"


@pytest.fixture
async def world(db, clock) -> AsyncIterator[TeamsWorld]:
    people = company()
    seed(db, clock, people)
    async with teams_world(db, clock) as w:
        for person in people:
            if person.active and person.email != ENG2:  # eng2 never installs the app
                await w.install(person.email)
        yield w


async def approved(world: TeamsWorld, line: str) -> int:
    preview = await world.say(COMMS.email, line)
    ann = int(preview[0].text.split("#")[1].split()[0])
    await world.click(COMMS.email, f"submit:{ann}")
    await world.deliver()
    await world.click(APPROVER.email, f"approve:{ann}")
    await world.deliver()
    return ann


async def test_commands_with_or_without_the_slash(world: TeamsWorld):
    plain = await world.say(COMMS.email, "crier help")
    slashed = await world.say(COMMS.email, "/crier help")
    assert "Crier commands" in plain[0].text and plain[0].text == slashed[0].text
    preview = await world.say(COMMS.email, "announce to:Engineering Lunch is on us")
    assert "Preview of Announcement #1" in preview[0].text
    assert preview[0].actions == ["submit:1", "discard:1"]
    other = await world.say(COMMS.email, "hello there")
    assert "Type a command" in other[0].text


async def test_a_stranger_is_told_why_nothing_happens(world: TeamsWorld):
    said = await world.say("nobody@example.com", "crier help")
    assert "not in Crier's directory" in said[0].text


async def test_got_it_refreshes_the_card_and_a_second_click_changes_nothing(
        world: TeamsWorld, db):
    ann = await approved(world, "announce to:Engineering ack Read the new policy\nDetails")
    card = world.holding(ENG1, f"ack:{ann}")
    assert card.summary == "Read the new policy"  # not "Sent a card"
    answer, said = await world.click(ENG1, f"ack:{ann}")
    assert said == []
    assert "✓ Acknowledged" in card.text and f"ack:{ann}" not in card.actions
    before = card.card
    answer, said = await world.click(ENG1, f"ack:{ann}", activity=card)
    assert said == [] and "Already acknowledged" in card.text
    assert [b for b in card.card["body"][:-1]] == before["body"][:-1]
    status = await world.say(COMMS.email, f"crier status {ann}")
    assert "Acknowledged 1 of 7" in status[0].text


async def test_action_submit_fallback_updates_the_clicked_card(world: TeamsWorld):
    ann = await approved(world, "announce to:Engineering ack Fire drill at 3")
    card = world.holding(ENG1, f"ack:{ann}")
    said = await world.submit(ENG1, f"ack:{ann}")
    assert said == []
    assert card.edits == 1 and "✓ Acknowledged" in card.text
    assert "Acknowledged 1 of 7" in (await world.say(COMMS.email, f"crier status {ann}"))[0].text


async def test_reject_needs_a_reason_typed_on_the_card(world: TeamsWorld):
    preview = await world.say(COMMS.email, "announce to:Engineering Pizza friday")
    await world.click(COMMS.email, "submit:1")
    await world.deliver()
    card = world.holding(APPROVER.email, "reject:1")
    assert any(b.get("type") == "Input.Text" and b["id"] == "reason"
               for b in card.card["body"])
    answer, _ = await world.click(APPROVER.email, "reject:1")
    assert "needs a reason" in answer["value"]
    assert "pending approval" in (await world.say(COMMS.email, "crier status 1"))[0].text
    answer, _ = await world.click(APPROVER.email, "reject:1", reason="Not on a Friday")
    assert "Rejected" in json.dumps(answer) or "rejected" in json.dumps(answer)
    await world.deliver()
    status = (await world.say(COMMS.email, "crier status 1"))[0].text
    assert "rejected" in status and "Not on a Friday" in status
    assert preview


async def test_poll_buttons_count_votes(world: TeamsWorld):
    poll = await approved(world, 'poll to:Engineering "Team lunch?" "Pizza" "Sushi"')
    card = world.holding(ENG1, f"vote:{poll}:2")
    assert card.summary == "Team lunch?"
    await world.click(ENG1, f"vote:{poll}:2")
    status = (await world.say(COMMS.email, f"crier status {poll}"))[0].text
    assert "Answers: 1 of 7 people" in status and "2. Sushi: 1" in status


async def test_the_conversation_reference_keeps_the_regional_path(world: TeamsWorld, db):
    with db.session() as s:
        row = s.execute(select(Identity).where(Identity.platform == "teams",
                                               Identity.platform_user_id == aad(ENG1))
                        ).scalar_one()
    ref = json.loads(row.address or "")
    assert ref["service_url"].endswith("/amer/")
    assert ref["conversation"] == world.conversation(ENG1)
    assert ref["tenant"] == world.server.validator.tenant_id and ref["user"] == aad(ENG1)


async def test_someone_without_the_app_counts_as_not_installed(world: TeamsWorld, db):
    with db.session() as s:  # known to Teams (a Graph sync linked them) but never installed
        eng2 = s.execute(select(Identity).where(Identity.platform == "teams")).scalars().first()
        assert eng2 is not None
        from storage.models import Person
        person = s.execute(select(Person).where(Person.email == ENG2)).scalar_one()
        s.add(Identity(person_id=person.id, platform="teams", platform_user_id=aad(ENG2),
                       linked_at=eng2.linked_at))
    ann = await approved(world, "announce to:Engineering Standup moved")
    with db.session() as s:
        row = s.execute(select(Delivery).where(Delivery.announcement_id == ann,
                                               Delivery.person_id == person.id,
                                               Delivery.purpose == "announcement")
                        ).scalar_one()
    assert row.status == "unreachable" and "not installed" in (row.error or "")
    status = (await world.say(COMMS.email, f"crier status {ann}"))[0].text
    assert "Sent 6 of 7" in status and "unreachable 1" in status
    assert "Not reached: 1 Teams: not installed" in status
    await world.install(ENG2)  # Teams then sends the install activity: reachable from now on
    ann2 = await approved(world, "announce to:Engineering Standup is back")
    assert "Standup is back" in world.chat(ENG2)[-1].text and ann2


async def test_long_text_is_split_into_cards_never_cut(world: TeamsWorld):
    # 9,000+ characters of three-byte script: about 28 KB, more than one card holds.
    text = "Big update\n" + "\n".join(f"{i:03d}" + "規定の更新📣" * 30 for i in range(52))
    assert len(text) < 10_000 and len(text.encode()) > 28 * 1024
    ann = await approved(world, f"announce to:Engineering ack {text}")
    mine = [a for a in world.chat(ENG1) if "規定" in a.text]
    assert len(mine) >= 2
    assert all(len(json.dumps(a.body, ensure_ascii=False).encode()) < 28 * 1024 for a in mine)
    assert all(a.summary == "Big update" for a in mine)
    shown = "".join(b["text"] for a in mine for b in a.card["body"]
                    if b["type"] == "TextBlock" and "規定" in b["text"])
    assert shown.replace("\n", "") == text.replace("\n", "")
    assert mine[-1].actions == [f"ack:{ann}"]


async def test_a_bare_announce_opens_the_drafting_card(world: TeamsWorld):
    [card] = await world.say(COMMS.email, "announce")
    inputs = {b["id"] for b in card.card["body"] if b["type"].startswith("Input.")}
    assert inputs == {"audience", "text", "ack", "urgent", "category", "schedule"}
    [kinds] = [b for b in card.card["body"] if b.get("id") == "category"]
    assert kinds["value"] == "general" and {"title": "social", "value": "social"} in kinds[
        "choices"] and {"title": "safety (mandatory)", "value": "safety"} in kinds["choices"]
    assert card.actions == ["draft"]
    # Missing inputs: the card comes back with the errors under the fields, nothing drafted.
    answer, _ = await world.click(COMMS.email, "draft", audience="", text="")
    shown = json.dumps(answer["value"], ensure_ascii=False)
    assert "Write the announcement" in shown and "Say who gets it" in shown
    answer, _ = await world.click(COMMS.email, "draft", audience="Engineering",
                                  text="Lunch", schedule="someday soon")
    assert "is not a time" in json.dumps(answer["value"], ensure_ascii=False)
    # The domain's own validation, shown on the card too, under the field it concerns.
    answer, _ = await world.click(COMMS.email, "draft", audience="Engineering", text="Hi",
                                  category="gossip")
    [warning] = [b for b in answer["value"]["body"] if "gossip" in str(b.get("text", ""))]
    body = answer["value"]["body"]
    assert body[body.index(warning) - 1].get("id") == "category"
    answer, _ = await world.click(COMMS.email, "draft", audience="Marketing", text="Hi")
    assert "Marketing" in json.dumps(answer["value"], ensure_ascii=False)
    assert any(b.get("id") == "audience" for b in answer["value"]["body"])
    answer, _ = await world.click(COMMS.email, "draft", audience="Engineering",
                                  text="Lunch at noon", ack="true")
    assert "Preview of Announcement #1" in json.dumps(answer["value"], ensure_ascii=False)
    assert world.holding(COMMS.email, "submit:1")  # the form became the preview
    answer, _ = await world.click(COMMS.email, "submit:1")
    assert "Sent to 3 approvers" in json.dumps(answer["value"], ensure_ascii=False)
