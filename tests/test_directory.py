"""The employee directory: CSV import, re-import, refusals by line, roles and links.

Uses the ``db`` and ``clock`` fixtures of ``conftest.py`` (SQLite, or PostgreSQL
when ``CRIER_TEST_POSTGRES_URL`` is set).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import random
from datetime import timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import func, select

from announcements import audit
from announcements.clock import ManualClock
from announcements.directory import (
    DirectoryImportError,
    ImportResult,
    grant_role,
    import_csv,
    revoke_role,
)
from announcements.errors import CrierError
from storage.db import Database
from storage.models import Identity, Person, RoleGrant

SAMPLE = Path(__file__).resolve().parents[1] / "bot" / "data" / "sample_company.csv"

FOUR_PEOPLE = """\
    email,name,department,location,timezone
    Ana.Lopez@Example.com,Ana Lopez,Engineering,Berlin,Europe/Berlin
    ben.okafor@example.com,Ben Okafor,Sales,New York,America/New_York
    chloe.weber@example.com,Chloe Weber,Engineering,Berlin,
    dmitri.petrov@example.com,Dmitri Petrov,Finance,London,Europe/London
"""


def source(text: str) -> io.StringIO:
    return io.StringIO(dedent(text))


def people(db: Database) -> dict[str, Person]:
    with db.session() as session:
        return {p.email: p for p in session.exec(select(Person)).all()}


def grants(db: Database, email: str) -> set[tuple[str, str]]:
    with db.session() as session:
        query = select(RoleGrant.role, RoleGrant.scope).join(Person).where(Person.email == email)
        return {(role, scope) for role, scope in session.exec(query).all()}


def links(db: Database, email: str) -> dict[str, str]:
    with db.session() as session:
        query = (
            select(Identity.platform, Identity.platform_user_id)
            .join(Person)
            .where(Person.email == email)
        )
        return dict(session.exec(query).all())


def snapshot(db: Database) -> tuple[list[Any], list[Any], list[Any]]:
    """Every stored value an import could change."""
    with db.session() as session:
        rows = sorted(
            (p.email, p.name, p.department, p.location, p.title, p.timezone, p.active,
             p.updated_at)
            for p in session.exec(select(Person)).all()
        )
        idents = sorted(
            (i.person_id, i.platform, i.platform_user_id, i.linked_at)
            for i in session.exec(select(Identity)).all()
        )
        roles = sorted((g.person_id, g.role, g.scope) for g in session.exec(select(RoleGrant)))
    return rows, idents, roles


# ---------------------------------------------------------------- importing


def test_import_creates_people_with_their_departments(db, clock):
    result = import_csv(db, source(FOUR_PEOPLE), clock)

    assert result == ImportResult(created=4, updated=0, unchanged=0)
    assert result.summary() == "4 people: 4 added, 0 updated, 0 unchanged"
    found = people(db)
    assert sorted(found) == [
        "ana.lopez@example.com", "ben.okafor@example.com",
        "chloe.weber@example.com", "dmitri.petrov@example.com",
    ]
    ana = found["ana.lopez@example.com"]
    assert (ana.name, ana.department, ana.location, ana.timezone) == (
        "Ana Lopez", "Engineering", "Berlin", "Europe/Berlin"
    )
    assert found["chloe.weber@example.com"].timezone == "UTC"
    assert found["ben.okafor@example.com"].title is None
    assert ana.active is True
    assert ana.created_at == ana.updated_at == clock.now()


def test_header_is_case_insensitive_and_a_utf8_bom_is_accepted(db, clock, tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(
        "\ufeff Email , NAME,Department,Slack ID\n"
        "jörg.müller@example.com,Jörg Müller,Operations,U0JORG\n".encode()
    )

    result = import_csv(db, str(path), clock)

    assert result.summary() == "1 person: 1 added, 0 updated, 0 unchanged"
    assert people(db)["jörg.müller@example.com"].name == "Jörg Müller"
    assert links(db, "jörg.müller@example.com") == {"slack": "U0JORG"}


def test_reimport_updates_changed_people_and_never_duplicates(db, clock):
    import_csv(db, source(FOUR_PEOPLE), clock)
    created_at = people(db)["ben.okafor@example.com"].created_at
    clock.advance(timedelta(days=3))

    moved = FOUR_PEOPLE.replace("Ben Okafor,Sales", "Ben Okafor,Customer Success")
    result = import_csv(db, source(moved), clock)

    assert result.summary() == "4 people: 0 added, 1 updated, 3 unchanged"
    found = people(db)
    assert len(found) == 4
    ben = found["ben.okafor@example.com"]
    assert ben.department == "Customer Success"
    assert ben.created_at == created_at
    assert ben.updated_at == clock.now()
    assert found["ana.lopez@example.com"].updated_at == created_at


def test_reimport_reactivates_and_leaves_absent_columns_alone(db, clock):
    import_csv(db, source(FOUR_PEOPLE), clock)
    with db.session() as session:
        ana = session.exec(select(Person).where(Person.email == "ana.lopez@example.com")).one()
        ana.active = False
        session.add(ana)

    result = import_csv(
        db,
        source("""\
            email,name,department
            ana.lopez@example.com,Ana Lopez,Engineering
        """),
        clock,
    )

    assert result.updated == 1
    ana = people(db)["ana.lopez@example.com"]
    assert ana.active is True
    assert (ana.location, ana.timezone) == ("Berlin", "Europe/Berlin")


def test_bad_rows_are_all_reported_by_line_and_nothing_is_written(db, clock):
    import_csv(db, source(FOUR_PEOPLE), clock)
    before = snapshot(db)
    bad = """\
        email,name,department,location,timezone
        ana.lopez@example.com,Ana Lopez,Sales,Berlin,Europe/Berlin
        new.person@example.com,New Person,Marketing,London,Europe/London
        bob@,Bob,Sales,London,Europe/London
        erin@example.com,,Sales,London,Europe/London
        fred@example.com,Fred,Sales,Berlin,Europe/Berln

        gus@example.com,Gus,Sales,Berlin,Mars/Olympus
    """

    with pytest.raises(DirectoryImportError) as refused:
        import_csv(db, source(bad), clock)

    message = str(refused.value)
    assert refused.value.problems == [
        'line 4: email "bob@" is not a valid email address',
        "line 5: name is missing",
        'line 6: time zone "Europe/Berln" is unknown (did you mean Europe/Berlin?)',
        'line 8: time zone "Mars/Olympus" is unknown (use an IANA name such as Europe/Berlin)',
    ]
    assert "4 problems; nothing was imported" in message
    for problem in refused.value.problems:
        assert problem in message
    assert snapshot(db) == before


def test_duplicate_email_in_the_file_names_both_lines(db, clock):
    with pytest.raises(DirectoryImportError) as refused:
        import_csv(
            db,
            source("""\
                email,name,department
                ana@example.com,Ana,Sales
                ANA@example.com,Ana Again,Sales
            """),
            clock,
        )

    assert refused.value.problems == [
        'line 3: email "ana@example.com" already appears on line 2'
    ]
    assert people(db) == {}


def test_a_missing_required_column_names_it_and_shows_the_expected_header(db, clock):
    with pytest.raises(DirectoryImportError) as refused:
        import_csv(db, source("email,name\nana@example.com,Ana\n"), clock)

    text = str(refused.value)
    assert "the header lacks the required column(s) department" in text
    assert "email,name,department,location,title,timezone" in text
    assert people(db) == {}


def test_a_misspelt_column_is_pointed_out(db, clock):
    with pytest.raises(DirectoryImportError) as refused:
        import_csv(db, source("email,name,department,timezon\na@x.io,A,S,UTC"), clock)

    assert refused.value.problems == ['line 1: unknown column "timezon" (did you mean timezone?)']


def test_an_empty_file_is_refused(db, clock):
    with pytest.raises(DirectoryImportError, match="the file is empty"):
        import_csv(db, io.StringIO(""), clock)


# ---------------------------------------------------------------- roles in the file


def test_roles_column_grants_roles_and_replaces_them_on_reimport(db, clock):
    import_csv(
        db,
        source("""\
            email,name,department,location,roles
            ana@example.com,Ana,Engineering,Berlin,author:engineering;approver:*;admin
            ben@example.com,Ben,Sales,London,author:loc:london
            cy@example.com,Cy,Sales,London,
        """),
        clock,
    )

    assert grants(db, "ana@example.com") == {
        ("author", "Engineering"), ("approver", "*"), ("admin", "*"),
    }
    assert grants(db, "ben@example.com") == {("author", "loc:London")}
    assert grants(db, "cy@example.com") == set()

    result = import_csv(
        db,
        source("""\
            email,name,department,location,roles
            ana@example.com,Ana,Engineering,Berlin,author:Engineering
            ben@example.com,Ben,Sales,London,author:loc:London
            cy@example.com,Cy,Sales,London,admin
        """),
        clock,
    )

    assert result.summary() == "3 people: 0 added, 2 updated, 1 unchanged"
    assert grants(db, "ana@example.com") == {("author", "Engineering")}
    assert grants(db, "cy@example.com") == {("admin", "*")}


def test_without_a_roles_column_roles_are_left_alone(db, clock):
    import_csv(db, source("email,name,department,roles\nana@example.com,A,S,admin"), clock)

    import_csv(db, source("email,name,department\nana@example.com,A,S"), clock)

    assert grants(db, "ana@example.com") == {("admin", "*")}


def test_unknown_role_and_unknown_department_scope_are_refused(db, clock):
    with pytest.raises(DirectoryImportError) as refused:
        import_csv(
            db,
            source("""\
                email,name,department,roles
                ana@example.com,Ana,Engineering,autor:Engineering
                ben@example.com,Ben,Sales,approver:Enginering
            """),
            clock,
        )

    problems = refused.value.problems
    assert len(problems) == 2
    assert problems[0].startswith('line 2: roles "autor:Engineering": unknown role "autor"')
    assert "the roles are author, approver, admin" in problems[0]
    assert problems[1] == (
        'line 3: roles "approver:Enginering": there is no department "Enginering" '
        "(did you mean Engineering?)"
    )
    assert people(db) == {}


# ---------------------------------------------------------------- platform ids


def test_platform_ids_are_linked_and_relinked(db, clock):
    import_csv(
        db,
        source("""\
            email,name,department,slack_id,telegram_id,teams_id
            ana@example.com,Ana,Sales,U0ANA,100200300,29:ana-teams
            ben@example.com,Ben,Sales,,,
        """),
        clock,
    )

    assert links(db, "ana@example.com") == {
        "slack": "U0ANA", "telegram": "100200300", "teams": "29:ana-teams",
    }
    assert links(db, "ben@example.com") == {}
    with db.session() as session:
        linked = session.exec(select(Identity.linked_at)).all()
    assert set(linked) == {clock.now()}

    result = import_csv(
        db,
        source("""\
            email,name,department,slack_id
            ana@example.com,Ana,Sales,U0ANA2
            ben@example.com,Ben,Sales,U0ANA
        """),
        clock,
    )

    assert result.summary() == "2 people: 0 added, 2 updated, 0 unchanged"
    assert links(db, "ana@example.com")["slack"] == "U0ANA2"
    assert links(db, "ana@example.com")["telegram"] == "100200300"
    assert links(db, "ben@example.com") == {"slack": "U0ANA"}


def test_a_platform_id_of_someone_else_is_refused(db, clock):
    import_csv(db, source("email,name,department,slack_id\nana@example.com,A,S,U0A"), clock)
    before = snapshot(db)

    with pytest.raises(DirectoryImportError) as refused:
        import_csv(
            db,
            source("""\
                email,name,department,slack_id,telegram_id
                ben@example.com,Ben,Sales,U0A,
                cy@example.com,Cy,Sales,,555
                dee@example.com,Dee,Sales,,555
            """),
            clock,
        )

    assert refused.value.problems == [
        'line 2: slack_id "U0A" already belongs to ana@example.com',
        'line 4: telegram_id "555" is also given to cy@example.com on line 3',
    ]
    assert snapshot(db) == before


# ---------------------------------------------------------------- grant and revoke


@pytest.fixture
def company(db: Database, clock: ManualClock) -> Database:
    import_csv(db, source(FOUR_PEOPLE), clock)
    return db


def test_grant_and_revoke_say_what_happened(company, clock):
    email = "ana.lopez@example.com"

    assert grant_role(company, email, "author", "engineering", clock=clock) == (
        "Granted author over Engineering to Ana Lopez <ana.lopez@example.com>."
    )
    assert grants(company, email) == {("author", "Engineering")}
    again = grant_role(company, email, "Author", "Engineering", clock=clock)
    assert "already has author over Engineering; nothing changed" in again
    assert grants(company, email) == {("author", "Engineering")}

    assert grant_role(company, email, "approver", clock=clock) == (
        "Granted approver over everyone to Ana Lopez <ana.lopez@example.com>."
    )
    assert grant_role(company, email, "author", "loc:Berlin", clock=clock).startswith(
        "Granted author over loc:Berlin"
    )

    assert revoke_role(company, email, "author", "Engineering", clock=clock) == (
        "Revoked author over Engineering from Ana Lopez <ana.lopez@example.com>."
    )
    missing = revoke_role(company, email, "author", "Finance", clock=clock)
    assert "does not have author over Finance; nothing to revoke" in missing
    assert "approver over everyone" in missing
    assert grants(company, email) == {("approver", "*"), ("author", "loc:Berlin")}


def test_a_role_change_moves_updated_at(company, clock):
    clock.advance(timedelta(hours=2))

    grant_role(company, "ben.okafor@example.com", "admin", clock=clock)

    assert people(company)["ben.okafor@example.com"].updated_at == clock.now()


def test_unknown_email_suggests_close_ones(company, clock):
    with pytest.raises(CrierError) as refused:
        grant_role(company, "ana.lopez@exmple.com", "author", clock=clock)

    assert 'there is no "ana.lopez@exmple.com" in the directory' in str(refused.value)
    assert "did you mean ana.lopez@example.com?" in str(refused.value)


def test_unknown_role_lists_the_roles(company, clock):
    with pytest.raises(CrierError) as refused:
        revoke_role(company, "ana.lopez@example.com", "editor")

    assert "unknown role" in str(refused.value)
    assert "author, approver, admin" in str(refused.value)


def test_unknown_department_scope_suggests_the_closest(company, clock):
    with pytest.raises(CrierError) as refused:
        grant_role(company, "ana.lopez@example.com", "author", "Enginering", clock=clock)

    assert 'there is no department "Enginering" (did you mean Engineering?)' in str(refused.value)
    assert "loc:City" in str(refused.value)
    assert grants(company, "ana.lopez@example.com") == set()


# ---------------------------------------------------------------- scale and the sample


def statements_to_import_twice(path: Path, clock: ManualClock, size: int) -> tuple[int, int]:
    """SQL statements run by a first import of ``size`` people, then by a re-import
    that moves a fifth of them to another department and role."""
    db = Database(f"sqlite:///{path}")
    db.migrate()
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    lines = ["email,name,department,slack_id,roles"]
    lines += [f"p{i}@example.com,P {i},Dept{i % 5},U{i},author:Dept{i % 5}" for i in range(size)]

    import_csv(db, io.StringIO("\n".join(lines)), clock)
    first = len(statements)
    moved = [line.replace("Dept1", "Dept2") for line in lines]
    result = import_csv(db, io.StringIO("\n".join(moved)), clock)
    db.dispose()
    assert result.updated == size // 5
    return first, len(statements) - first


def test_import_runs_no_query_per_row(tmp_path, clock):
    small = statements_to_import_twice(tmp_path / "small.db", clock, 20)
    large = statements_to_import_twice(tmp_path / "large.db", clock, 400)

    assert small == large


def test_the_bundled_sample_company_imports_cleanly(db, clock):
    result = import_csv(db, SAMPLE, clock)

    assert result.created >= 300
    with db.session() as session:
        departments = session.exec(select(func.count(func.distinct(Person.department)))).one()
        locations = session.exec(select(func.count(func.distinct(Person.location)))).one()
    assert departments >= 6
    assert locations >= 3
    assert grants(db, "casey.comms@example.com") == {("author", "*")}
    assert grants(db, "avery.approver@example.com") == {("approver", "*")}
    assert grants(db, "erin.eng@example.com") == {
        ("author", "Engineering"), ("approver", "Engineering"),
    }
    assert grants(db, "sam.admin@example.com") == {("admin", "*")}
    assert people(db)["hr.lead@example.com"].name == "Harper Lee"
    assert import_csv(db, SAMPLE, clock).unchanged == result.created


def test_the_sample_company_is_what_its_script_generates():
    spec = importlib.util.spec_from_file_location("make_sample", SAMPLE.with_name(
        "make_sample_company.py"
    ))
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    expected = [list(row) for row in script.build_rows(random.Random(script.SEED))]
    with SAMPLE.open(encoding="utf-8", newline="") as stream:
        committed = list(csv.reader(stream))

    assert committed[0] == list(script.COLUMNS)
    assert committed[1:] == expected


# ---------------------------------------------------------------- safety rails


def test_department_spelling_follows_the_directory(company, clock):
    import_csv(company, source("""\
        email,name,department,location
        erik.lund@example.com,Erik Lund,engineering,BERLIN
        fay.moss@example.com,Fay Moss,Legal,london
        gus.hart@example.com,Gus Hart,LEGAL,
    """), clock)
    stored = people(company)
    assert (stored["erik.lund@example.com"].department,
            stored["erik.lund@example.com"].location) == ("Engineering", "Berlin")
    assert stored["fay.moss@example.com"].location == "London"
    assert stored["gus.hart@example.com"].department == "Legal"  # the file's first spelling


def test_an_import_may_not_remove_every_admin(db, clock):
    import_csv(db, source("""\
        email,name,department,roles
        sam@example.com,Sam,IT,admin
        kim@example.com,Kim,IT,author:*
    """), clock)
    before = snapshot(db)
    with pytest.raises(DirectoryImportError) as caught:
        import_csv(db, source("""\
            email,name,department,roles
            sam@example.com,Sam,IT,
            kim@example.com,Kim,IT,author:*
        """), clock)
    assert caught.value.problems == [
        "this import would take the admin role from Sam <sam@example.com>, the last admin"]
    assert "crier roles grant EMAIL admin" in str(caught.value)
    assert snapshot(db) == before


def test_the_last_admin_cannot_be_revoked_and_changes_are_audited(db, clock):
    from storage.models import AuditEvent

    import_csv(db, source("""\
        email,name,department,roles
        sam@example.com,Sam,IT,admin
        kim@example.com,Kim,IT,
    """), clock)
    with pytest.raises(CrierError, match="the last admin"):
        revoke_role(db, "sam@example.com", "admin", clock=clock)
    grant_role(db, "kim@example.com", "admin", clock=clock)
    assert "Revoked" in revoke_role(db, "sam@example.com", "admin", clock=clock)
    with db.session() as session:
        events = session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()
        subjects = [e.subject for e in audit.read(session, events)]
    assert [(e.action, subject) for e, subject in zip(events, subjects, strict=True)] == [
        ("person_added", "sam@example.com"), ("role_granted", "sam@example.com"),
        ("person_added", "kim@example.com"),  # the import: every change, with its source
        ("role_granted", "kim@example.com"), ("role_revoked", "sam@example.com"),
    ]
    assert json.loads(events[1].detail or "{}") == {"role": "admin", "scope": "*", "source": "csv"}
    assert "@" not in "".join(e.detail or "" for e in events)  # people by id, never by email
