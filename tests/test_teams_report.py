"""The weekly report in a Teams channel: subscribed from the channel, posted as a
card whose chart Crier serves."""

from __future__ import annotations

from tests.factories import ADMIN, COMMS, company, seed
from tests.fakes.teams_world import teams_world

PNG = b"\x89PNG\r\n\x1a\n"
CHANNEL = "19:reports-channel@thread.tacv2"


async def test_a_channel_subscribes_and_gets_the_report_card(db, clock):
    people = company()
    seed(db, clock, people)
    async with teams_world(db, clock, public_url="https://crier.example.com") as world:
        for person in (ADMIN, COMMS):
            await world.install(person.email)
        in_channel = {"conversation": {"id": CHANNEL, "conversationType": "channel",
                                       "tenantId": world.identity.tenant}}
        chat = world.activity(ADMIN.email, "message", text="<at>Crier</at> hello")
        await world.post({**chat, **in_channel})
        assert "only take `crier report subscribe`" in world.connector.chat(CHANNEL)[-1].text
        subscribe = world.activity(ADMIN.email, "message",
                                   text="<at>Crier</at> crier report subscribe")
        response = await world.post({**subscribe, **in_channel})
        assert response.status_code == 200
        assert "will get the weekly report" in world.connector.chat(CHANNEL)[-1].text

        assert await world.runtime.scheduler.post_weekly() == 1
        card = world.connector.chat(CHANNEL)[-1]
        assert card.text.startswith("Crier weekly report")
        assert card.summary.startswith("Crier weekly report") or card.summary
        [image] = [b for b in card.card["body"] if b["type"] == "Image"]
        assert image["url"].startswith("https://crier.example.com/teams/charts/")
        path = image["url"].removeprefix("https://crier.example.com")
        served = await world.http.get(path)
        assert served.status_code == 200 and served.content.startswith(PNG)
        assert (await world.http.get("/teams/charts/guess.png")).status_code == 404
