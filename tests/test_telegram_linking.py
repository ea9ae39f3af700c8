"""Linking a Telegram account: invites, codes sent through a trusted platform, and
every way it must refuse."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from announcements.linking import create_invite
from bot.console import ConsolePlatform
from bot.telegram.cli import telegram_cli
from storage.models import Identity, LinkCode
from tests.factories import seed
from tests.fakes.telegram_world import ENG1, ENG2, SECRET, TelegramWorld, linked_world

ENG3 = 2003
STRANGER = 6666


def telegram_links(world: TelegramWorld) -> dict[str, str]:
    """platform_user_id -> the email it is linked to."""
    from storage.models import Person

    with world.db.session() as s:
        rows = s.execute(select(Identity.platform_user_id, Person.email)
                         .join(Person, Person.id == Identity.person_id)
                         .where(Identity.platform == "telegram")).tuples().all()
    return dict(rows)


async def test_an_email_not_in_the_directory_gets_no_code(db, clock, api):
    async with linked_world(db, clock, api, linked={}) as world:
        said = await world.say(STRANGER, "nobody@example.com")
        assert "I cannot send a code for nobody@example.com" in said[-1].text
        assert "invite link" in said[-1].text
        # Someone in the directory but linked nowhere else gets the same answer: the bot
        # does not tell strangers who works here.
        said = await world.say(STRANGER, "eng3@example.com")
        assert "I cannot send a code for eng3@example.com" in said[-1].text
        with world.db.session() as s:
            assert s.execute(select(LinkCode)).first() is None
        assert telegram_links(world) == {}


async def test_a_code_sent_through_slack_links_only_the_account_that_asked(db, clock, api):
    slack = ConsolePlatform(name="slack", identifies_by_email=False)
    async with linked_world(db, clock, api, linked={}, others={"slack": slack},
                            identities={"eng3@example.com": {"slack": "U003"}}) as world:
        said = await world.say(ENG3, "ENG3@example.com")
        assert said[-1].text == ("I sent a 6-digit code to your Slack account. Type it here to "
                                 "finish linking.")
        [note] = slack.inbox("U003")
        assert note.message.title == "Your Crier code for Telegram"
        code = note.message.text.split("*")[1]
        assert len(code) == 6 and code.isdigit()
        with world.db.session() as s:
            stored = s.execute(select(LinkCode.code_hash)).scalars().all()
        assert stored and code not in stored  # only a hash is kept

        # Someone else who learned the code cannot use it.
        said = await world.say(STRANGER, code)
        assert "that code is not valid" in said[-1].text
        said = await world.say(ENG3, code)
        assert said[-1].text.startswith("✓ Linked: this Telegram account is now Engineer 3")
        assert telegram_links(world) == {str(ENG3): "eng3@example.com"}
        said = await world.say(ENG3, code)  # used once
        assert "Commands start with a slash" in said[-1].text


async def test_wrong_codes_are_limited(db, clock, api):
    async with linked_world(db, clock, api, linked={}) as world:
        for left in (4, 3, 2, 1):
            said = await world.say(STRANGER, "/start wrongcode-1234567890")
            assert "that code is not valid" in said[-1].text
            assert f"({left} tries left)" in said[-1].text
        said = await world.say(STRANGER, "/start wrongcode-1234567890")
        assert "Wait an hour" in said[-1].text
        # Even a valid code is refused now: guessing cannot continue.
        issued = create_invite(world.db, clock, "eng1@example.com", "telegram")
        said = await world.say(STRANGER, f"/start {issued.code}")
        assert "too many wrong codes" in said[-1].text
        assert telegram_links(world) == {}
        clock.advance(timedelta(hours=1, seconds=1))
        said = await world.say(STRANGER, f"/start {issued.code}")
        assert said[-1].text.startswith("✓ Linked")


async def test_a_verification_code_is_void_after_five_wrong_guesses(db, clock, api):
    slack = ConsolePlatform(name="slack", identifies_by_email=False)
    async with linked_world(db, clock, api, linked={}, others={"slack": slack},
                            identities={"eng3@example.com": {"slack": "U003"}}) as world:
        await world.say(ENG3, "eng3@example.com")
        code = slack.inbox("U003")[0].message.text.split("*")[1]
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(5):
            await world.say(ENG3, wrong)
        clock.advance(timedelta(hours=1, seconds=1))  # past the per-account wait, not the code's
        said = await world.say(ENG3, code)
        assert "that code is not valid" in said[-1].text
        assert telegram_links(world) == {}


async def test_invites_expire_are_single_use_and_never_take_over_a_link(db, clock, api):
    async with linked_world(db, clock, api, linked={"eng1@example.com": ENG1}) as world:
        old = create_invite(world.db, clock, "eng2@example.com", "telegram")
        clock.advance(timedelta(days=7, seconds=1))
        said = await world.say(ENG2, f"/start {old.code}")
        assert "that code is not valid" in said[-1].text

        fresh = create_invite(world.db, clock, "eng2@example.com", "telegram")
        # eng1's Telegram account cannot become eng2's entry.
        said = await world.say(ENG1, f"/start {fresh.code}")
        assert "already linked to someone else's entry" in said[-1].text
        said = await world.say(ENG2, f"/start {fresh.code}")
        assert said[-1].text.startswith("✓ Linked: this Telegram account is now Engineer 2")
        said = await world.say(STRANGER, f"/start {fresh.code}")
        assert "that code is not valid" in said[-1].text
        assert telegram_links(world) == {str(ENG1): "eng1@example.com",
                                         str(ENG2): "eng2@example.com"}


def test_cli_invite_prints_a_deep_link_and_set_webhook_registers_the_secret(db, clock, api):
    seed(db, clock)
    env = {"CRIER_DATABASE_URL": db.url.render_as_string(hide_password=False),
           "TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_URL": api.base_url,
           "TELEGRAM_WEBHOOK_SECRET": SECRET}
    runner = CliRunner()
    result = runner.invoke(telegram_cli, ["invite", "eng1@example.com"], env=env)
    assert result.exit_code == 0, result.output
    assert "Invite for Engineer 1 <eng1@example.com>" in result.output
    link = next(w for w in result.output.split() if w.startswith("https://t.me/"))
    assert link.startswith("https://t.me/crier_test_bot?start=")

    result = runner.invoke(telegram_cli, ["invite", "nobody@example.com"], env=env)
    assert result.exit_code == 2
    assert "nobody@example.com is not in the directory" in result.output

    result = runner.invoke(telegram_cli, ["set-webhook", "http://crier.example.com/x"], env=env)
    assert result.exit_code == 2 and "not an https:// URL" in result.output
    result = runner.invoke(telegram_cli, ["set-webhook",
                                          "https://crier.example.com/telegram/webhook"], env=env)
    assert result.exit_code == 0, result.output
    assert api.webhook["url"] == "https://crier.example.com/telegram/webhook"
    assert api.webhook["secret_token"] == SECRET
    assert "poll_answer" in api.webhook["allowed_updates"]


async def test_the_cli_invite_links_through_the_deep_link(db, clock, api):
    async with linked_world(db, clock, api, linked={}) as world:
        env = {"CRIER_DATABASE_URL": db.url.render_as_string(hide_password=False),
               "TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_URL": api.base_url}
        clock.set(datetime.now(UTC))  # the CLI issues the invite by the system clock
        result = await asyncio.to_thread(
            CliRunner().invoke, telegram_cli,
            ["invite", "eng1@example.com", "--bot-username", "crier_test_bot"], env=env)
        assert result.exit_code == 0, result.output
        code = result.output.split("?start=")[1].split()[0]
        said = await world.say(ENG1, f"/start {code}")
        assert said[-1].text.startswith("✓ Linked: this Telegram account is now Engineer 1")
