"""Placeholders: each recipient reads their own details; anything but the allowlist is
refused when drafting, naming the placeholder."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from announcements.personalize import check, fill
from storage.models import Person as PersonRow
from tests.factories import COMMS
from tests.harness import make_chat
from tests.test_commands import drafts


@pytest.fixture
def chat(db, clock):
    return make_chat(db, clock)


@pytest.mark.parametrize("text, named", [
    ("Hi {salary}", "`{salary}` is not a placeholder Crier knows"),
    ("Hi {first_name.__class__}", "`{first_name.__class__}` is not a placeholder"),
    ("Hi {first_name:>10}", "`{first_name:>10}` is not a placeholder"),
    ("Hi {first_name!r}", "`{first_name!r}` is not a placeholder"),
    ("Hi {0}", "`{0}` is not a placeholder"),
    ("Hi {}", "`{}` is not a placeholder"),
    ("Hi {department[0]}", "`{department[0]}` is not a placeholder"),
    ("Hi { first_name }", "`{ first_name }` is not a placeholder"),
    ("Hi {first_name", "`{first_name` is not a placeholder"),
    ("Costs } here", "`}` is not a placeholder"),
])
async def test_anything_but_an_allowed_placeholder_is_refused_naming_it(chat, db, text, named):
    out = await chat.say(COMMS.email, f"/announce to:Sales {text}")
    assert out.startswith(f"✗ {named}")
    assert "Placeholders: {first_name}, {department}, {location}, {manager}" in out
    assert "Write {{ and }} for a literal brace." in out
    assert drafts(db) == 0


async def test_each_recipient_reads_their_own_details_and_the_preview_shows_one(chat):
    line = ("/announce to:Sales,@eng2@example.com Hi {first_name}: {department} in {location} "
            "meets {manager} on Friday. {{Bring snacks}}")
    out = await chat.say(COMMS.email, line)
    # The preview is the text as the first member (by name) reads it.
    assert "Hi Engineer: Engineering in New York meets your manager on Friday. {Bring snacks}" \
        in out
    assert "Shown as Engineer 2 will see it; each recipient sees their own details." in out
    ann = await chat.approved(line)
    assert [m.text for m in chat.messages("sales3@example.com", ann)] == [
        "Hi Seller: Sales in London meets your manager on Friday. {Bring snacks}"]
    assert [m.text for m in chat.messages("eng2@example.com", ann)] == [
        "Hi Engineer: Engineering in New York meets your manager on Friday. {Bring snacks}"]


async def test_a_poll_question_is_personal_too(chat):
    poll = await chat.approved('/poll to:Sales "Lunch in {location}?" "Yes" "No"')
    [message] = chat.messages("sales1@example.com", poll)
    assert message.poll is not None and message.poll.question == "Lunch in London?"


def test_substitution_is_plain_replacement_of_the_persons_own_values():
    person = PersonRow(email="x@example.com", name="Ana {department} Lima",
                       department="{first_name}", location=None)
    # A value that looks like a placeholder is not read again; an unknown value reads neutrally.
    assert fill("{first_name}/{department}/{location}", person) == \
        "Ana/{first_name}/your location"
    assert check("plain text") is False and check("Dear {first_name}") is True


async def test_only_a_personal_text_is_rendered_per_recipient(chat, db):
    """The engine's batch: one rendering per announcement, unless the text is personal."""
    from announcements.compose import copies
    from announcements.delivery.outbox import Claimed
    from storage.models import Delivery

    plain = await chat.approved("/announce to:Sales Office closed Friday")
    personal = await chat.approved("/announce to:Sales Dear {first_name}, office closed")
    with db.session() as s:
        rows = [Claimed(d.id, d.announcement_id, d.person_id, d.platform, d.purpose, d.address,
                        0, None) for d in s.execute(select(Delivery).where(
                    Delivery.purpose == "announcement")).scalars()]
        rendered = copies(s, rows, chat.clock.now())
    by_ann: dict[int, list[object]] = {}
    for r in rows:
        by_ann.setdefault(r.announcement_id, []).append(rendered[r.id])
    assert len(by_ann[plain]) == 4 and len({id(m) for m in by_ann[plain]}) == 1
    assert len({id(m) for m in by_ann[personal]}) == 4
