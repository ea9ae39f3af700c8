"""The webhook's gate: the secret token, malformed updates, repeated update ids, and
what a Telegram user who is not linked (or is in a group) may do."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.telegram.handlers import NOT_LINKED, PRIVATE_ONLY
from storage.models import Announcement, ReportSubscription
from tests.factories import ADMIN
from tests.fakes.telegram_world import CASEY, SAM, SECRET, TelegramWorld, linked_world

GROUP = -100_555


def drafts(world: TelegramWorld) -> int:
    with world.db.session() as s:
        return s.execute(select(func.count()).select_from(Announcement)).scalar_one()


@pytest.mark.parametrize(("secret", "status"), [(None, 401), ("wrong", 403), ("", 403),
                                                (SECRET + "x", 403)])
async def test_a_call_without_the_right_secret_processes_nothing(world, api, secret, status):
    update = world.updates.message(CASEY, "/announce to:Engineering Hello")
    response = await world.post(update, secret=secret)
    assert response.status_code == status
    assert api.requests() == []
    assert drafts(world) == 0
    # The update was not swallowed: Telegram's own retry (with the secret) still works.
    response = await world.post(update)
    assert response.status_code == 200
    assert drafts(world) == 1


async def test_the_webhook_is_off_without_a_configured_secret(db, clock, api):
    from tests.fakes.telegram_world import settings_for

    async with linked_world(db, clock, api, linked={}) as world:
        world.runtime.settings = settings_for(api, db, telegram_webhook_secret=None)
        response = await world.post(world.updates.message(CASEY, "/start"), secret="")
        assert response.status_code == 403
        assert api.requests("sendMessage") == []


@pytest.mark.parametrize("body", [
    b"{not json", b"", b"[1, 2]", b'{"message": {}}', b'{"update_id": "12"}',
    b'{"update_id": 12, "message": {"text": "/start"}}',
    b'{"update_id": 13, "callback_query": "click"}',
])
async def test_malformed_updates_are_refused(world, api, body):
    response = await world.post(body)
    assert response.status_code == 400
    assert api.requests("sendMessage") == []


async def test_a_repeated_update_id_is_processed_once(world, api):
    update = world.updates.message(CASEY, "/announce to:Engineering Deploy freeze Friday")
    for _ in range(3):
        response = await world.post(update)
        assert response.status_code == 200
    assert drafts(world) == 1
    previews = [m for m in world.chat(CASEY) if "Preview of" in (m.text or "")]
    assert len(previews) == 1


async def test_an_unlinked_user_can_only_start(world, api):
    stranger = 9999
    for line in ("/announce to:all Free pizza", "/crier help", "/crier whoami", "hello"):
        said = await world.say(stranger, line)
        assert [m.text for m in said] == [NOT_LINKED], line
    said = await world.say(stranger, "/start")
    assert "send me your work email" in said[-1].text

    # A button forwarded from someone else's chat does nothing for a stranger.
    said = await world.say(CASEY, "/announce to:Engineering Hello")
    ann = world.holding(CASEY, said[-1].buttons[0][1])
    answer = await world.click(stranger, ann, said[-1].buttons[0][1])
    assert answer["show_alert"] is True and "only /start works" in answer["text"]
    assert drafts(world) == 1
    with world.db.session() as s:
        assert s.get(Announcement, 1).status == "draft"


async def test_commands_in_a_group_point_to_the_private_chat(world, api):
    said = await world.say(CASEY, "/announce@crier_test_bot to:all Hello", chat_id=GROUP)
    assert [m.text for m in said] == [PRIVATE_ONLY]
    assert drafts(world) == 0


async def test_an_admin_subscribes_a_group_to_the_weekly_report(db, clock, api):
    async with linked_world(db, clock, api, linked={ADMIN.email: SAM, "casey.comms@example.com":
                                                    CASEY}) as world:
        said = await world.say(CASEY, "/crier@crier_test_bot report subscribe", chat_id=GROUP)
        assert "only admins" in said[-1].text
        said = await world.say(SAM, "/crier@crier_test_bot report subscribe", chat_id=GROUP)
        assert "will get the weekly report" in said[-1].text
        with world.db.session() as s:
            rows = s.execute(select(ReportSubscription.platform, ReportSubscription.channel)
                             ).tuples().all()
        assert rows == [("telegram", str(GROUP))]
