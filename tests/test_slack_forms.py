"""The /announce drafting modal: opening, inline field errors, and the preview it leads to."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from bot.slack.modal import ESCALATE_NEEDS
from storage.models import Announcement
from tests.fakes.slack_events import AVERY, CASEY, ENG, form_values


def drafts(slack) -> int:
    with slack.runtime.db.session() as s:
        return s.execute(select(func.count()).select_from(Announcement)).scalar_one()


async def open_form(slack, user: str = CASEY):
    shown = await slack.command(user, "/announce")
    assert shown.posts == []  # nothing in the channel: the form opened instead
    opened = slack.fake.requests("views.open")[-1]
    assert opened.params["trigger_id"].startswith("trigger-")
    return opened.params["view"]


async def test_announce_without_text_opens_the_drafting_form(slack):
    view = await open_form(slack)
    assert view["callback_id"] == "crier_draft"
    labels = [b["label"]["text"] for b in view["blocks"]]
    assert labels[:2] == ["Title", "Message"]
    assert {"Audience", "Send at", "Options", "Remind people who have not confirmed"} <= set(labels)
    audience = next(b for b in view["blocks"] if b["block_id"] == "audience")["element"]
    groups = {g["label"]["text"]: [o["value"] for o in g["options"]]
              for g in audience["option_groups"]}
    assert groups["Everyone"] == ["all"]
    assert {"Engineering", "People", "Sales", "Operations"} <= set(groups["Departments"])
    assert {"loc:Berlin", "loc:London", "loc:New York"} <= set(groups["Locations"])


async def test_missing_fields_come_back_as_inline_errors(slack):
    view = await open_form(slack)
    response = await slack.submit(CASEY, view, form_values(title="Hello"))
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"message", "audience"}
    assert "Choose who gets it" in body["errors"]["audience"]

    response = await slack.submit(CASEY, view, form_values(
        message="Read this", audience=["Engineering"], nudge="24h"))
    assert response.json()["errors"] == {"nudge": "Reminders go to people who have not "
                                                  "confirmed, so also tick “Ask recipients to "
                                                  "confirm”."}
    assert drafts(slack) == 0
    assert slack.fake.requests("chat.postMessage") == []


async def test_the_domain_refusal_shows_under_the_field_it_concerns(slack):
    view = await open_form(slack)
    response = await slack.submit(CASEY, view, form_values(
        message="Read this", audience_text="Enginering"))
    errors = response.json()["errors"]
    assert list(errors) == ["audience"]
    assert "unknown department `Enginering`" in errors["audience"]
    assert "Engineering" in errors["audience"]

    past = int((slack.clock.now() - timedelta(hours=2)).timestamp())
    response = await slack.submit(CASEY, view, form_values(
        message="Read this", audience=["Engineering"], schedule=past))
    assert list(response.json()["errors"]) == ["schedule"]
    assert "in the past" in response.json()["errors"]["schedule"]
    assert drafts(slack) == 0


async def test_a_complete_form_shows_the_preview_where_the_command_was_typed(slack):
    view = await open_form(slack)
    later = int((slack.clock.now() + timedelta(days=1)).replace(minute=0).timestamp())
    response = await slack.submit(CASEY, view, form_values(
        title="On-call policy", message="Please read the *new* policy.",
        audience=["Engineering", "loc:London"], audience_text="-eng2@example.com",
        options=["ack", "urgent"], nudge="24h", schedule=later))
    assert response.status_code == 200 and response.content in (b"", b"{}")  # closes the form
    preview = slack.shown("r1")  # the response_url of the /announce command
    assert len(preview.posts) == 1 and preview.posts[0]["response_type"] == "ephemeral"
    text = preview.text
    assert "On-call policy" in text and "Please read the *new* policy." in text
    # Engineering and London (Sales 4, Casey), less eng2: 6 + 4 + 1.
    assert "will reach 11 people: Engineering 6, Sales 4, People 1" in text
    assert "Audience: Engineering,loc:London,-@eng2@example.com" in text
    assert "acknowledgement requested, urgent, nudges non-readers every 24h" in text
    assert "Sends: Sat 2026-11-28" in text  # the picked time, in Casey's zone (London)
    ann = re.search(r"submit:(\d+)", " ".join(preview.actions)).group(1)

    submitted = await slack.click_ephemeral(CASEY, f"submit:{ann}", preview)
    assert "submitted" in submitted.text
    await slack.deliver()
    assert f"approve:{ann}" in slack.fake.last(AVERY).actions


async def test_the_form_from_the_app_home_previews_in_a_direct_message(slack):
    await slack.event({"type": "app_home_opened", "user": CASEY, "tab": "home"}, "Ev1")
    await slack.click_home(CASEY, "crier_open_form")
    view = slack.fake.opened_views()[-1]
    assert view["callback_id"] == "crier_draft"
    await slack.submit(CASEY, view, form_values(message="Team lunch Friday",
                                                audience=["Engineering"]))
    preview = slack.fake.last(CASEY)  # the app's DM with Casey
    assert "Team lunch Friday" in preview.visible
    assert any(a.startswith("submit:") for a in preview.actions)
    submitted = await slack.click(CASEY, preview.actions[0], preview)
    assert submitted.posts == []  # the preview itself now says so
    assert "submitted" in slack.fake.last(CASEY).visible
    assert slack.fake.last(CASEY).ts == preview.ts


async def test_people_who_may_not_author_are_told_so_under_the_form(slack):
    engineer = ENG["eng1@example.com"]
    view = await open_form(slack, engineer)
    response = await slack.submit(engineer, view, form_values(message="Hi all",
                                                              audience=["all"]))
    errors = response.json()["errors"]
    assert "you are not an author" in errors["message"]


async def test_the_form_has_a_category_and_refuses_a_forged_one_under_it(slack):
    view = await open_form(slack)
    field = next(b for b in view["blocks"] if b["block_id"] == "category")
    assert field["element"]["initial_option"]["value"] == "general"
    assert [o["text"]["text"] for o in field["element"]["options"]][:2] == [
        "general (mandatory)", "safety (mandatory)"]
    assert "social" in [o["value"] for o in field["element"]["options"]]
    response = await slack.submit(CASEY, view, form_values(
        message="Hi", audience=["Sales"], category="parties"))
    errors = response.json()["errors"]
    assert list(errors) == ["category"]
    assert "there is no category `parties`" in errors["category"]
    assert drafts(slack) == 0

    await slack.submit(CASEY, view, form_values(message="Quiz night", audience=["Sales"],
                                                category="social"))
    assert "Category: social" in slack.shown("r1").text


async def test_the_form_escalates_an_urgent_confirmed_announcement_and_says_so(slack):
    view = await open_form(slack)
    escalate = next(b for b in view["blocks"] if b["block_id"] == "escalate")
    assert [o["value"] for o in escalate["element"]["options"]] == [
        "15m", "30m", "1h", "4h", "1d"]

    response = await slack.submit(CASEY, view, form_values(
        message="Fire drill at 3", audience=["Engineering"], options=["ack"], escalate="30m"))
    assert response.json()["errors"] == {"escalate": ESCALATE_NEEDS}
    response = await slack.submit(CASEY, view, form_values(
        message="Fire drill at 3", audience=["Engineering"], options=["ack", "urgent"],
        escalate="soon"))
    assert response.json()["errors"] == {"escalate": "Pick one of the times in the list."}
    assert drafts(slack) == 0

    response = await slack.submit(CASEY, view, form_values(
        message="Fire drill at 3", audience=["Engineering"], options=["ack", "urgent"],
        escalate="30m"))
    assert response.content in (b"", b"{}")
    text = slack.shown("r1").text
    assert "escalates to people's next platform after 30m" in text
    with slack.runtime.db.session() as s:
        assert s.execute(select(Announcement.escalate_after)).scalar_one() == 1800
