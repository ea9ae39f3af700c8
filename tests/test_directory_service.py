"""The directory service as an admin meets it: one set of rules for CSV import and
Slack sync (the last admin stays, full imports, typos caught, everything audited),
and ``crier roles list``. Runs on SQLite, or PostgreSQL with CRIER_TEST_POSTGRES_URL."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from announcements import audit
from announcements.directory import DirectoryImportError, grant_role, import_csv
from announcements.errors import CrierError
from bot.cli import app
from bot.settings import Settings
from bot.slack import make_client, sync_directory
from storage.db import Database
from storage.models import AuditEvent, Identity, Person, RoleGrant
from tests.fakes.slack_api import FakeSlackAPI

runner = CliRunner()


def crier(db_url: str, *args: str, **env: str):
    return runner.invoke(app, list(args), env={"CRIER_DATABASE_URL": db_url, **env})


def everything(db: Database) -> tuple[list[Any], ...]:
    """Every stored value a directory change could touch, audit log included."""
    with db.session() as s:
        people = sorted((p.email, p.name, p.department, p.location, p.active, p.updated_at)
                        for p in s.exec(select(Person)).all())
        links = sorted((i.person_id, i.platform, i.platform_user_id)
                       for i in s.exec(select(Identity)).all())
        roles = sorted((g.person_id, g.role, g.scope) for g in s.exec(select(RoleGrant)).all())
        audit = sorted((e.action, e.detail or "") for e in s.exec(select(AuditEvent)).all())
    return people, links, roles, audit


def active(db: Database) -> dict[str, bool]:
    with db.session() as s:
        return {p.email: p.active for p in s.exec(select(Person)).all()}


def audit_log(db: Database) -> list[tuple[str, dict[str, Any]]]:
    """Events as an admin reads them: the person an event is about by today's address."""
    with db.session() as s:
        events = audit.entries(s, audit.Query())
        return [(e.action, {**({"person": e.subject} if e.subject else {}), **e.detail})
                for e in events]


def csv_file(tmp_path: Path, text: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


STAFF = (
    "email,name,department,location,roles\n"
    "sam.admin@example.com,Sam Rivera,Operations,Berlin,admin\n"
    "ana@example.com,Ana Lima,Engineering,Berlin,author:Engineering\n"
    "bo@example.com,Bo Berg,Sales,London,\n"
)


# ---------------------------------------------------------------- the last admin and Slack


@pytest.fixture
def slack():
    with FakeSlackAPI() as api:
        api.add_user("U1", "sam.admin@example.com", "Sam Rivera", deleted=True)
        api.add_user("U2", "ana@example.com", "Ana Lima", fields={"Department": "Platform"})
        api.add_user("U3", "new.person@example.com", "New Person",
                     fields={"Department": "Engneering"})
        yield api


async def test_a_slack_sync_that_would_deactivate_the_last_admin_is_refused(db, clock, slack):
    import_csv(db, io.StringIO(STAFF), clock)
    before = everything(db)
    client = make_client(Settings(slack_bot_token=slack.token, slack_api_url=slack.url))

    with pytest.raises(CrierError) as refused:
        await sync_directory(db, client, clock)

    text = str(refused.value)
    assert "this Slack sync would deactivate Sam Rivera <sam.admin@example.com>, the last " \
           "admin" in text
    assert "nothing was imported" in text
    assert "crier roles grant EMAIL admin" in (refused.value.hint or "")
    assert everything(db) == before  # Ana not refreshed, nobody added, nothing audited

    grant_role(db, "ana@example.com", "admin", clock=clock)
    result = await sync_directory(db, client, clock)
    assert (result.added, result.updated, result.deactivated) == (1, 1, 1)
    assert 'Warning: New department "Engneering" looks like "Engineering"; fix the spelling ' \
           "at the source if it is a typo." in result.summary()  # Slack is taken as it is
    assert active(db)["sam.admin@example.com"] is False
    assert ("person_deactivated", {"person": "sam.admin@example.com", "source": "slack"}) \
        in audit_log(db)


def test_the_cli_says_why_a_slack_sync_was_refused(db, db_url, clock, slack):
    import_csv(db, io.StringIO(STAFF), clock)

    result = crier(db_url, "directory", "sync", "slack", SLACK_BOT_TOKEN=slack.token,
                   SLACK_API_URL=slack.url)

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "would deactivate Sam Rivera <sam.admin@example.com>, the last admin" in result.output
    assert "Grant admin to someone who stays first" in result.output
    assert active(db)["sam.admin@example.com"] is True


# ---------------------------------------------------------------- full re-import


def test_a_full_import_deactivates_people_missing_from_the_file(db, db_url, clock, tmp_path):
    import_csv(db, io.StringIO(STAFF), clock)
    without_bo = csv_file(tmp_path, STAFF.replace("bo@example.com,Bo Berg,Sales,London,\n", ""))

    partial = crier(db_url, "directory", "import", str(without_bo))
    assert partial.exit_code == 0, partial.output
    assert active(db)["bo@example.com"] is True  # without the flag: left alone

    full = crier(db_url, "directory", "import", str(without_bo), "--deactivate-missing")
    assert full.exit_code == 0, full.output
    assert "2 people: 0 added, 0 updated, 2 unchanged; 1 deactivated (missing from the file)" \
        in " ".join(full.output.split())
    assert active(db) == {"sam.admin@example.com": True, "ana@example.com": True,
                          "bo@example.com": False}
    assert audit_log(db)[-1] == ("person_deactivated",
                                 {"person": "bo@example.com", "source": "csv"})

    back = crier(db_url, "directory", "import", str(csv_file(tmp_path, STAFF, "all.csv")))
    assert "1 updated" in back.output and active(db)["bo@example.com"] is True


def test_a_full_import_never_deactivates_the_last_admin(db, db_url, clock, tmp_path):
    import_csv(db, io.StringIO(STAFF), clock)
    before = everything(db)
    no_admin = csv_file(tmp_path, "email,name,department\nana@example.com,Ana Lima,Engineering\n")

    result = crier(db_url, "directory", "import", str(no_admin), "--deactivate-missing")

    assert result.exit_code == 2
    assert "this import would deactivate Sam Rivera <sam.admin@example.com>, the last admin" \
        in " ".join(result.output.split())
    assert everything(db) == before  # Bo was not deactivated either


# ---------------------------------------------------------------- typos in places


def engineering(count: int) -> str:
    return "".join(f"eng{i}@example.com,Engineer {i},Engineering,Berlin\n" for i in range(count))


def test_a_misspelt_department_is_refused_by_line_unless_it_is_meant(db, db_url, clock, tmp_path):
    file = csv_file(tmp_path, "email,name,department,location\n" + engineering(101)
                    + "typo@example.com,Tia Typo,Engneering,Berlin\n")

    refused = crier(db_url, "directory", "import", str(file))

    assert refused.exit_code == 2
    assert ('line 103: department "Engneering" would be a new department (did you mean '
            "Engineering?); if it is new, import with --new-departments") in refused.output
    assert active(db) == {}  # nothing half-written

    meant = crier(db_url, "directory", "import", str(file), "--new-departments")
    assert meant.exit_code == 0, meant.output
    assert "102 people: 102 added" in meant.output
    assert 'New department "Engneering" looks like "Engineering"' in meant.output


def test_a_misspelt_location_next_to_the_directory_is_refused(db, clock):
    import_csv(db, io.StringIO(STAFF), clock)
    file = "email,name,department,location\ncy@example.com,Cy,Sales,Berln\n"

    with pytest.raises(DirectoryImportError) as refused:
        import_csv(db, io.StringIO(file), clock)

    assert refused.value.problems == [
        'line 2: location "Berln" would be a new location (did you mean Berlin?); if it is '
        "new, import with --new-locations"]
    assert import_csv(db, io.StringIO(file), clock, new_locations=True).created == 1
    # A different name is simply a new department or location.
    assert import_csv(db, io.StringIO("email,name,department,location\n"
                                      "di@example.com,Di,Legal,Lisbon\n"), clock).created == 1


def test_a_role_over_a_place_nobody_has_is_refused_with_the_closest(db, db_url, clock):
    import_csv(db, io.StringIO(STAFF), clock)

    berln = crier(db_url, "roles", "grant", "bo@example.com", "author", "loc:Berln")
    assert berln.exit_code == 2
    assert 'there is no location "Berln" (did you mean Berlin?)' in berln.output
    nowhere = crier(db_url, "roles", "grant", "bo@example.com", "author", "loc:Atlantis")
    assert 'there is no location "Atlantis"; the locations are Berlin, London' in nowhere.output
    legal = crier(db_url, "roles", "grant", "bo@example.com", "author", "Legal")
    assert 'there is no department "Legal"; the departments are Engineering, Operations, ' \
           "Sales" in legal.output
    with db.session() as s:
        assert s.exec(select(RoleGrant.scope).join(Person).where(
            Person.email == "bo@example.com")).all() == []


# ---------------------------------------------------------------- the file's shape


def test_unknown_columns_are_named_with_the_accepted_ones(db, db_url, clock, tmp_path):
    file = csv_file(tmp_path, "email,name,department,Manager,Phone\n"
                              "ana@example.com,Ana Lima,Engineering,Bo,+49 30 1234\n")

    result = crier(db_url, "directory", "import", str(file))

    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "1 person: 1 added" in said
    assert 'Ignored the columns "Manager", "Phone": Crier reads only email, name, department, ' \
           "location, title, timezone, slack_id, telegram_id, teams_id, roles." in said


def test_a_semicolon_separated_file_gets_a_delimiter_hint(db, db_url, tmp_path):
    file = csv_file(tmp_path, "email;name;department\nana@example.com;Ana Lima;Engineering\n")

    result = crier(db_url, "directory", "import", str(file))

    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "line 1: the columns are separated by semicolons, not commas" in said
    assert 'Save the file as "CSV UTF-8 (Comma delimited)"' in said
    assert active(db) == {}


# ---------------------------------------------------------------- roles list and the audit


def test_roles_list_shows_who_holds_what_over_which_scope(db, db_url, clock):
    empty = crier(db_url, "roles", "list")
    assert "Nobody holds a role yet" in empty.output
    import_csv(db, io.StringIO(STAFF), clock)
    grant_role(db, "bo@example.com", "approver", "loc:London", clock=clock)

    listed = crier(db_url, "roles", "list", COLUMNS="120")

    assert listed.exit_code == 0, listed.output
    rows = [line.split("│")[1:-1] for line in listed.output.splitlines() if "@" in line]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["admin", "everyone", "Sam Rivera", "sam.admin@example.com"],
        ["approver", "loc:London", "Bo Berg", "bo@example.com"],
        ["author", "Engineering", "Ana Lima", "ana@example.com"],
    ]
    assert "Roles (3 grants)" in listed.output


def test_every_change_an_import_makes_is_audited_with_its_source(db, clock):
    import_csv(db, io.StringIO("email,name,department,slack_id,roles\n"
                               "ana@example.com,Ana Lima,Engineering,U1,admin\n"), clock)
    import_csv(db, io.StringIO("email,name,department,slack_id,roles\n"
                               "ana@example.com,Ana Lima,Sales,U2,admin\n"), clock)
    import_csv(db, io.StringIO("email,name,department,slack_id,roles\n"
                               "ana@example.com,Ana Lima,Sales,U2,admin\n"), clock)

    assert audit_log(db) == [
        ("person_added", {"person": "ana@example.com", "source": "csv"}),
        ("linked", {"person": "ana@example.com", "platform": "slack",
                    "replaced_account": False, "source": "csv"}),
        ("role_granted", {"person": "ana@example.com", "role": "admin", "scope": "*",
                          "source": "csv"}),
        # Which fields changed, never their values or chat accounts: audit rows outlive
        # an erasure, so they hold no personal data but the person's id.
        ("person_updated", {"person": "ana@example.com", "fields": ["department"],
                            "source": "csv"}),
        ("linked", {"person": "ana@example.com", "platform": "slack",
                    "replaced_account": True, "source": "csv"}),
    ]  # the third import changed nothing and wrote nothing
