"""``crier directory sync slack``: users.list, page by page, into the directory."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.settings import Settings
from bot.slack import FieldMap, make_client, sync_directory
from bot.slack import sync as sync_module
from bot.slack.cli import sync as cli_sync
from storage.models import Identity, Person
from tests.factories import Staff, seed
from tests.fakes.slack_api import FakeSlackAPI

KNOWN = [
    Staff("ana.lead@example.com", "Ana Lead", "Engineering", "Berlin"),
    Staff("ben.leaver@example.com", "Ben Leaver", "Sales", "London"),
    Staff("cleo.csv@example.com", "Cleo Only-In-CSV", "People", "London"),
]


@pytest.fixture
def fake():
    with FakeSlackAPI() as api:
        api.add_user("U01", "Ana.Lead@example.com", "Ana Lead", tz="Europe/Berlin",
                     title="Staff Engineer", fields={"Department": "Platform",
                                                     "Office": "Berlin"})
        api.add_user("U02", "ben.leaver@example.com", "Ben Leaver", deleted=True)
        api.add_user("U03", "dan.new@example.com", "Dan New", tz="America/New_York",
                     title="Designer", fields={"Department": "Design", "Office": "New York"})
        api.add_user("U04", "erin.nodept@example.com", "Erin No-Dept", tz="Mars/Olympus")
        api.add_user("B01", None, "Deploy Bot", bot=True)
        api.add_user("USLACKBOT", None, "Slackbot")
        api.add_user("U05", "guest@partner.example", "Gus Guest", guest=True)
        api.add_user("U06", None, "No Email")
        yield api


def people(db) -> dict[str, Person]:
    with db.session() as s:
        return {p.email: p for p in s.execute(select(Person)).scalars()}


def links(db) -> dict[str, str]:
    with db.session() as s:
        rows = s.execute(select(Person.email, Identity.platform_user_id)
                         .join(Identity, Identity.person_id == Person.id)
                         .where(Identity.platform == "slack")).tuples().all()
    return dict(rows)


async def test_sync_reads_every_page_and_applies_the_rules(db, clock, fake, monkeypatch):
    seed(db, clock, KNOWN)
    monkeypatch.setattr(sync_module, "PAGE_SIZE", 3)
    client = make_client(Settings(slack_bot_token=fake.token, slack_api_url=fake.url))
    result = await sync_directory(db, client, clock,
                                  FieldMap(department="Department", location="Office"))

    pages = fake.requests("users.list")
    assert [c.params.get("cursor") for c in pages] == [None, "3", "6"]
    assert all(c.params["limit"] == "3" for c in pages)
    assert result.pages == 3
    assert (result.added, result.updated, result.deactivated) == (2, 1, 1)
    assert (result.skipped_bots, result.skipped_guests, result.skipped_no_email) == (2, 1, 1)

    found = people(db)
    ana = found["ana.lead@example.com"]  # matched case-insensitively, refreshed
    assert (ana.department, ana.location, ana.title) == ("Platform", "Berlin", "Staff Engineer")
    dan = found["dan.new@example.com"]
    assert (dan.name, dan.department, dan.location, dan.timezone) == (
        "Dan New", "Design", "New York", "America/New_York")
    erin = found["erin.nodept@example.com"]
    assert erin.department == "Unassigned" and erin.timezone == "UTC"  # unknown zone ignored
    assert found["ben.leaver@example.com"].active is False  # deactivated in Slack
    assert found["cleo.csv@example.com"].active is True  # not in Slack: left alone
    assert "guest@partner.example" not in found
    assert links(db) == {"ana.lead@example.com": "U01", "dan.new@example.com": "U03",
                         "erin.nodept@example.com": "U04"}
    assert "3 pages read" in result.summary()

    again = await sync_directory(db, client, clock,
                                 FieldMap(department="Department", location="Office"))
    assert (again.added, again.updated, again.linked, again.deactivated) == (0, 0, 0, 0)
    assert again.unchanged == 3


async def test_field_names_come_from_the_environment(db, clock, fake):
    field_map = FieldMap.from_env({"CRIER_SLACK_DEPARTMENT_FIELD": "Team",
                                   "CRIER_SLACK_LOCATION_FIELD": "",
                                   "CRIER_SLACK_TITLE_FIELD": "title"})
    assert field_map == FieldMap(department="Team", location=None, title="title")
    client = make_client(Settings(slack_bot_token=fake.token, slack_api_url=fake.url))
    result = await sync_directory(db, client, clock, field_map)
    assert any("no Slack profile field `Team` for department" in w for w in result.warnings)
    assert "Department, Office" in result.summary()  # names the fields that exist
    assert people(db)["dan.new@example.com"].department == "Unassigned"
    assert fake.requests("users.profile.get") == []  # no custom field to read


async def test_a_changed_email_moves_the_slack_link(db, clock, fake):
    seed(db, clock, KNOWN + [Staff("ana.old@example.com", "Ana Lead", "Engineering")],
         {"ana.old@example.com": {"slack": "U01"}})
    client = make_client(Settings(slack_bot_token=fake.token, slack_api_url=fake.url))
    await sync_directory(db, client, clock, FieldMap(department=None, location=None))
    assert links(db)["ana.lead@example.com"] == "U01"
    assert "ana.old@example.com" not in links(db)


def test_the_cli_sync_prints_a_summary_and_explains_refusals(db, clock, fake, capsys):
    settings = Settings(database_url=str(db.url), slack_bot_token=fake.token,
                        slack_api_url=fake.url)
    result = cli_sync(settings, db)  # default fields: Department, Location, title
    assert result.added == 3
    printed = capsys.readouterr().out
    assert "Slack directory sync: 3 added" in " ".join(printed.split())
    assert "no Slack profile field `Location`" in printed

    from announcements.errors import CrierError

    with pytest.raises(CrierError, match="invalid_auth") as refused:
        cli_sync(Settings(database_url=str(db.url), slack_bot_token="xoxb-wrong",
                          slack_api_url=fake.url), db)
    assert "Bot User OAuth Token" in (refused.value.hint or "")
    with pytest.raises(CrierError, match="SLACK_BOT_TOKEN is not set"):
        cli_sync(Settings(database_url=str(db.url)), db)
