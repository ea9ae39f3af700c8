"""Who may do what: every role against every action, in and out of its scope, typed
and clicked through the console harness and judged by what the person reads; and a
property test that no sequence of actions sends a draft without a proper approval."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlmodel import col, func, select

from announcements import audit
from storage.models import Announcement, Delivery, Person, RoleGrant
from tests.factories import ADMIN, APPROVER, COMMS, ENG_LEAD
from tests.harness import Chat, make_chat

EMPLOYEE = "eng1@example.com"
UNKNOWN = "stranger@example.com"  # not in the directory
PEOPLE = {"author": COMMS.email, "scoped": ENG_LEAD.email, "approver": APPROVER.email,
          "admin": ADMIN.email, "employee": EMPLOYEE, "unknown": UNKNOWN}
REFUSED = "✗"
NOT_IN_DIRECTORY = "you are not in Crier's directory"

#: case -> who may do it. "Engineering"/"Sales": the audience, inside or outside the scoped
#: person's scope (author and approver over Engineering only). Every announcement acted on
#: was written by the author (COMMS, author over everyone).
ALLOWED: dict[str, set[str]] = {
    "draft Engineering": {"author", "scoped", "admin"},
    "draft Sales": {"author", "admin"},
    "submit": {"author"},
    "approve Engineering": {"scoped", "approver", "admin"},
    "approve Sales": {"approver", "admin"},
    "reject Engineering": {"scoped", "approver", "admin"},
    "reject Sales": {"approver", "admin"},
    "cancel": {"author", "admin"},
    "recall": {"author", "admin"},
    "edit": {"author", "admin"},
    "status": {"author", "scoped", "approver", "admin"},
    "report": {"author", "scoped", "approver", "admin"},
    "audit": {"admin"},
    "grant": {"admin"},
}


def _id(out: str, verb: str = "submit") -> int:
    match = re.search(rf"{verb}:(\d+)", out)
    assert match, out
    return int(match.group(1))


async def _draft(chat: Chat, audience: str) -> int:
    return _id(await chat.say(COMMS.email, f"/announce to:{audience} Notice for {audience}"))


async def _pending(chat: Chat, audience: str) -> int:
    ann = await _draft(chat, audience)
    assert "submitted" in await chat.click(COMMS.email, f"submit:{ann}")
    await chat.tick()
    return ann


async def attempts(chat: Chat, who: str) -> dict[str, str]:
    """Set up one announcement per case, then let ``who`` try each; what they read."""
    draft, cancel = await _draft(chat, "Sales"), await _draft(chat, "Sales")
    pending = {(v, a): await _pending(chat, a) for v in ("approve", "reject")
               for a in ("Engineering", "Sales")}
    sent = await chat.approved("/announce to:Engineering Sent notice")
    recall = await chat.approved("/announce to:Engineering Sent to recall")
    said: dict[str, str] = {}
    for audience in ("Engineering", "Sales"):
        said[f"draft {audience}"] = await chat.say(who, f"/announce to:{audience} Hello")
        for verb in ("approve", "reject"):
            said[f"{verb} {audience}"] = await chat.click(
                who, f"{verb}:{pending[(verb, audience)]}", "no" if verb == "reject" else None)
    said["submit"] = await chat.click(who, f"submit:{draft}")
    said["cancel"] = await chat.say(who, f"/crier cancel {cancel}")
    said["recall"] = await chat.say(who, f"/crier recall {recall}")
    said["edit"] = await chat.say(who, f"/crier edit {sent} Corrected notice")
    said["status"] = await chat.say(who, f"/crier status {sent}")
    said["report"] = await chat.say(who, "/crier report")
    said["audit"] = await chat.say(who, f"/crier audit {sent}")
    said["grant"] = await chat.say(who, f"/crier grant {EMPLOYEE} author Sales")
    return said


@pytest.mark.parametrize("role", list(PEOPLE))
async def test_every_action_is_allowed_or_refused_as_the_role_says(db, clock, role):
    chat = make_chat(db, clock)
    said = await attempts(chat, PEOPLE[role])
    seen = {case: not refused(out) for case, out in said.items()}
    assert seen == {case: role in who for case, who in ALLOWED.items()}, said
    for case, out in said.items():
        assert out.strip(), f"{case}: no answer at all"
        if refused(out):  # a refusal says what to do instead
            assert len(out.splitlines()) >= 2 or NOT_IN_DIRECTORY in out, (case, out)


def refused(out: str) -> bool:
    return out.startswith(REFUSED) or NOT_IN_DIRECTORY in out


# --------------------------------------------------------------------------- property

AUTHORS = (COMMS.email, ENG_LEAD.email, ADMIN.email)
ACTORS = (COMMS.email, ENG_LEAD.email, APPROVER.email, ADMIN.email, EMPLOYEE)
AUDIENCES = ("Engineering", "Sales", "all", "Engineering,Sales", "loc:Berlin")
#: Approvals are drawn more often, so that many examples do get sent.
STEPS = st.lists(st.tuples(st.sampled_from(("submit", "approve", "approve", "approve", "reject",
                                            "cancel", "edit", "recall", "tick", "later")),
                           st.sampled_from(ACTORS)), min_size=1, max_size=7)


def covers(grants: set[tuple[str, str]], people: list[tuple[str, str | None]]) -> bool:
    """The rule, written out again from the design: an admin or an approver over ``*``,
    or approver scopes naming every recipient's department or ``loc:`` city."""
    scopes = {scope for role, scope in grants if role in ("approver", "admin")}
    if "*" in scopes:
        return True
    return bool(people) and all(dept in scopes or f"loc:{loc}" in scopes
                                for dept, loc in people)


def sent_properly(db, ann: int) -> bool:
    with db.session() as s:
        row = s.get(Announcement, ann)
        assert row is not None
        recipients = s.execute(
            select(Person.department, Person.location).join(
                Delivery, Delivery.person_id == Person.id)  # type: ignore[arg-type]
            .where(Delivery.announcement_id == ann, Delivery.purpose == "announcement")
        ).tuples().all()
        if not recipients and row.status not in ("sending", "sent"):
            return True  # nothing went out
        approver = row.approved_by_id
        if approver is None or approver == row.author_id:
            return False
        grants = {(g.role, g.scope) for g in s.execute(
            select(RoleGrant).where(RoleGrant.person_id == approver)).scalars()}
        author = s.get(Person, row.author_id)
        approved = [e for e in audit.entries(s, audit.Query(announcement_id=ann))
                    if e.action == "approved"]
        # The audit trail agrees: approved, and never by the author.
        return covers(grants, list(recipients)) and bool(approved) and \
            all(e.actor != (author.email if author else None) for e in approved)


async def test_no_sequence_sends_a_draft_without_a_covering_second_approval(db, clock):
    chat = make_chat(db, clock)
    loop = asyncio.get_running_loop()  # hypothesis runs in a thread; the chat runs here

    async def play(author: str, audience: str, submit_first: bool,
                   steps: list[tuple[str, str]]) -> int | None:
        out = await chat.say(author, f"/announce to:{audience} Property check")
        if refused(out):
            return None  # outside the author's own scope: nothing to send
        ann = _id(out)
        if submit_first:
            await chat.click(author, f"submit:{ann}")
            await chat.tick()
        for verb, actor in steps:
            if verb == "tick":
                await chat.tick()
            elif verb == "later":
                chat.clock.advance(timedelta(hours=1))
                await chat.tick()
            elif verb in ("cancel", "recall"):
                await chat.say(actor, f"/crier {verb} {ann}")
            elif verb == "edit":
                await chat.say(actor, f"/crier edit {ann} Changed text")
            else:
                await chat.click(actor, f"{verb}:{ann}", "no" if verb == "reject" else None)
        await chat.tick()
        return ann

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(AUTHORS), st.sampled_from(AUDIENCES), st.booleans(), STEPS)
    # Besides the drawn ones, the sequences that matter most, always:
    @example(COMMS.email, "Sales", True, [("approve", APPROVER.email)])  # a proper approval
    @example(ENG_LEAD.email, "Engineering", True, [("approve", ENG_LEAD.email)])  # own draft
    @example(COMMS.email, "Sales", True, [("approve", ENG_LEAD.email)])  # outside the scope
    @example(COMMS.email, "all", True, [("approve", ENG_LEAD.email), ("approve", COMMS.email)])
    @example(COMMS.email, "Sales", False, [("approve", APPROVER.email), ("submit", COMMS.email),
                                           ("tick", COMMS.email)])  # approve before submit
    @example(COMMS.email, "Sales", True, [("cancel", COMMS.email), ("approve", ADMIN.email)])
    @example(COMMS.email, "Engineering", True, [("edit", COMMS.email),
                                                ("approve", ENG_LEAD.email)])
    @example(ADMIN.email, "loc:Berlin", True, [("approve", ADMIN.email), ("reject", APPROVER.email),
                                               ("approve", APPROVER.email)])
    def check(author: str, audience: str, submit_first: bool,
              steps: list[tuple[str, str]]) -> None:
        ann = asyncio.run_coroutine_threadsafe(
            play(author, audience, submit_first, steps), loop).result()
        assume(ann is not None)
        assert ann is not None
        assert sent_properly(db, ann), (author, audience, steps)

    await asyncio.to_thread(check)
    with db.session() as s:  # the property was exercised: some drafts did go out
        sent = s.execute(select(func.count()).select_from(Announcement).where(
            col(Announcement.status).in_(["sending", "sent"]))).scalar_one()
    assert sent >= 2


async def test_the_property_check_catches_a_send_without_a_proper_approval(db, clock):
    """``sent_properly`` can fail: the same sent announcement, with its approval
    rewritten to the author and then to an approver outside the audience."""
    chat = make_chat(db, clock)
    ann = await chat.approved("/announce to:Sales Numbers")
    assert sent_properly(db, ann)
    with db.session() as s:
        ids = dict(s.execute(select(Person.email, Person.id)).tuples().all())
        s.execute(Announcement.__table__.update().where(  # type: ignore[attr-defined]
            Announcement.id == ann).values(approved_by_id=ids[COMMS.email]))
    assert not sent_properly(db, ann)
    with db.session() as s:
        s.execute(Announcement.__table__.update().where(  # type: ignore[attr-defined]
            Announcement.id == ann).values(approved_by_id=ids[ENG_LEAD.email]))
    assert not sent_properly(db, ann)  # Erin approves Engineering only
