"""The App Home tab: what waits for each person, and acting on it from there."""

from __future__ import annotations

import re

from tests.fakes.slack_blocks import action_ids, visible_text
from tests.fakes.slack_events import AVERY, CASEY, ENG, ERIN, Shown

ENG1 = ENG["eng1@example.com"]


async def open_home(slack, user: str, event_id: str) -> tuple[str, list[str]]:
    response = await slack.event({"type": "app_home_opened", "user": user, "tab": "home"},
                                 event_id)
    assert response.status_code == 200
    view = slack.fake.homes[user]
    assert view["type"] == "home"
    return visible_text(view["blocks"]), action_ids(view["blocks"])


async def drafted(slack, line: str, command: str = "/announce") -> tuple[str, Shown]:
    preview = await slack.command(CASEY, command, line)
    return re.search(r"submit:(\d+)", " ".join(preview.actions)).group(1), preview


async def submitted(slack, line: str, command: str = "/announce") -> str:
    ann, preview = await drafted(slack, line, command)
    await slack.click_ephemeral(CASEY, f"submit:{ann}", preview)
    await slack.deliver()
    return ann


async def sent(slack, line: str, command: str = "/announce") -> str:
    ann = await submitted(slack, line, command)
    await slack.click(AVERY, f"approve:{ann}")
    await slack.deliver()
    return ann


async def test_an_employee_sees_what_to_confirm_and_open_polls(slack):
    text, actions = await open_home(slack, ENG1, "Ev1")
    assert "You are all caught up." in text
    assert actions == []  # not an author: no drafting button

    ack = await sent(slack, "to:Engineering ack Read the security policy")
    poll = await sent(slack, 'to:Engineering "Offsite in May or June?" "May" "June"', "/poll")
    text, actions = await open_home(slack, ENG1, "Ev2")
    assert "To confirm" in text and "Read the security policy" in text
    assert "Open polls" in text and "Offsite in May or June?" in text and "not answered yet" in text
    assert actions == [f"ack:{ack}", f"vote:{poll}:1", f"vote:{poll}:2"]

    await slack.click_home(ENG1, f"ack:{ack}")
    notice = slack.fake.opened_views()[-1]  # the answer, as a small modal over the Home
    assert "✓ Acknowledged" in visible_text(notice["blocks"])
    republished = slack.fake.homes[ENG1]
    assert f"ack:{ack}" not in action_ids(republished["blocks"])
    # The copy in the person's messages loses its button too (through the outbox).
    await slack.deliver()
    dm = next(m for m in slack.dm(ENG1) if "Read the security policy" in m.visible)
    assert dm.actions == [] and "✓ Acknowledged" in dm.visible

    await slack.click_home(ENG1, f"vote:{poll}:2")
    text = visible_text(slack.fake.homes[ENG1]["blocks"])
    assert "you answered June" in text


async def test_authors_see_drafts_and_recent_sends_approvers_what_waits(slack):
    ann = await sent(slack, "to:Engineering ack Deploy freeze on Friday")
    waiting = await submitted(slack, "to:Sales Quarter close")
    draft, _ = await drafted(slack, "to:Sales Still a draft")

    text, actions = await open_home(slack, CASEY, "Ev1")
    assert "New announcement" in text and "crier_open_form" in actions
    assert "Your drafts" in text and "waiting for approval" in text and "Still a draft" in text
    assert f"submit:{draft}" in actions
    assert "Recent sends" in text and f"Announcement #{ann}" in text
    assert "delivered 7 of 7 · confirmed 0" in text

    text, actions = await open_home(slack, AVERY, "Ev2")
    assert "Waiting for your approval" in text and "Quarter close" in text
    assert actions[-2:] == [f"approve:{waiting}", f"reject:{waiting}"]
    await slack.click_home(AVERY, f"approve:{waiting}")
    notice = visible_text(slack.fake.opened_views()[-1]["blocks"])
    assert f"Approved #{waiting}: it goes to 4 people" in notice
    assert f"approve:{waiting}" not in action_ids(slack.fake.homes[AVERY]["blocks"])

    text, _ = await open_home(slack, ERIN, "Ev3")  # approves Engineering only: no Sales draft
    assert "Quarter close" not in text


async def test_a_retried_event_has_one_effect(slack):
    await open_home(slack, CASEY, "Ev42")
    response = await slack.event({"type": "app_home_opened", "user": CASEY, "tab": "home"},
                                 "Ev42", retry=1)
    assert response.status_code == 200
    assert len(slack.fake.requests("views.publish")) == 1


async def test_the_messages_tab_and_strangers(slack):
    await slack.event({"type": "app_home_opened", "user": CASEY, "tab": "messages"}, "Ev1")
    assert slack.fake.requests("views.publish") == []
    text, actions = await open_home(slack, "U999", "Ev2")
    assert "not in Crier's directory" in text and actions == []
