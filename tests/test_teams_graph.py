"""``crier directory sync teams`` and ``crier teams install-for`` against a fake
Microsoft Graph, through msgraph-sdk."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import app
from storage.models import Identity, Person
from tests.factories import ADMIN, COMMS, seed
from tests.fakes.teams_graph import FakeGraph
from tests.fakes.teams_identity import APP_ID, PASSWORD, TENANT, FakeIdentity

runner = CliRunner()


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeIdentity() as identity, FakeGraph(identity) as fake:
        fake.add("u-casey", COMMS.email, "Casey Morgan", department="People",
                 officeLocation="London", jobTitle="Comms lead")
        fake.add("u-sam", ADMIN.email, "Sam Rivera", department="Operations")
        fake.add("u-ana", "ana@example.com", "Ana Lima", department="Sales",
                 officeLocation="Lisbon", jobTitle="Account executive")
        fake.add("u-bo", "bo@example.com", "Bo Berg", department="Engineering")
        fake.add("u-guest", "pat_partner.com#EXT#@contoso.onmicrosoft.com", "Pat Partner")
        fake.add("u-off", "off@example.com", "Old Account", department="Sales",
                 accountEnabled=False)
        yield fake


def crier(db, graph: FakeGraph, *args: str):
    env = {"CRIER_DATABASE_URL": db.url.render_as_string(hide_password=False),
           "TEAMS_APP_ID": APP_ID, "TEAMS_APP_PASSWORD": PASSWORD, "TEAMS_TENANT_ID": TENANT,
           "TEAMS_TOKEN_URL": graph.identity.token_url,
           "TEAMS_OPENID_METADATA_URL": graph.identity.metadata_url,
           "TEAMS_GRAPH_URL": graph.url}
    return runner.invoke(app, list(args), env=env)


def people(db) -> dict[str, Person]:
    with db.session() as s:
        return {p.email: p for p in s.execute(select(Person)).scalars()}


def teams_ids(db) -> dict[int, str]:
    with db.session() as s:
        return {i.person_id: i.platform_user_id for i in s.execute(
            select(Identity).where(Identity.platform == "teams")).scalars()}


def test_first_sync_reads_every_page_with_select_and_links_by_email(db, clock, graph):
    seed(db, clock, [COMMS, ADMIN])
    result = crier(db, graph, "directory", "sync", "teams")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    found = people(db)
    assert found["ana@example.com"].department == "Sales"
    assert found["ana@example.com"].location == "Lisbon"
    assert found["ana@example.com"].title == "Account executive"
    assert found[COMMS.email].title == "Comms lead"
    assert "pat_partner.com#ext#@contoso.onmicrosoft.com" not in found
    assert "off@example.com" not in found or not found["off@example.com"].active
    assert teams_ids(db)[found[COMMS.email].id] == "u-casey"
    first = graph.requests[0]
    assert "delta" in first and "department" in first and "%24select" in first.replace(
        "$", "%24")
    assert any("skiptoken" in r for r in graph.requests)  # more than one page


def test_later_runs_read_only_changes_from_the_delta_link(db, clock, graph):
    seed(db, clock, [COMMS, ADMIN])
    assert crier(db, graph, "directory", "sync", "teams").exit_code == 0
    graph.change("u-ana", department="Marketing")
    graph.change("u-bo", accountEnabled=False)
    graph.requests.clear()
    result = crier(db, graph, "directory", "sync", "teams")
    assert result.exit_code == 0, result.output
    assert "deltatoken" in graph.requests[0]
    found = people(db)
    assert found["ana@example.com"].department == "Marketing"
    assert not found["bo@example.com"].active
    graph.delete("u-ana")
    assert crier(db, graph, "directory", "sync", "teams").exit_code == 0
    assert not people(db)["ana@example.com"].active


def test_the_last_admin_is_never_deactivated(db, clock, graph):
    seed(db, clock, [COMMS, ADMIN])
    assert crier(db, graph, "directory", "sync", "teams").exit_code == 0
    graph.change("u-sam", accountEnabled=False)
    result = crier(db, graph, "directory", "sync", "teams")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "admin" in result.output.lower()
    assert people(db)[ADMIN.email].active


def test_graph_429_is_waited_out_for_retry_after(db, clock, graph):
    seed(db, clock, [COMMS, ADMIN])
    graph.throttle(times=1, retry_after=1)
    started = time.monotonic()
    result = crier(db, graph, "directory", "sync", "teams")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 1.0
    assert len(graph.throttled_at) == 1 and "ana@example.com" in people(db)


def test_graph_that_keeps_throttling_stops_with_one_line(db, clock, graph):
    seed(db, clock, [COMMS, ADMIN])
    graph.throttle(times=10, retry_after=1)
    result = crier(db, graph, "directory", "sync", "teams")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "429" in result.output and "ana@example.com" not in people(db)


def test_install_for_people_without_a_conversation(db, clock, graph):
    seed(db, clock, [COMMS, ADMIN])
    assert crier(db, graph, "directory", "sync", "teams").exit_code == 0
    missing = crier(db, graph, "teams", "install-for", "ana@example.com")
    assert missing.exit_code != 0 and "app catalog" in missing.output
    graph.catalog[APP_ID] = "catalog-crier"
    one = crier(db, graph, "teams", "install-for", "ana@example.com")
    assert one.exit_code == 0, one.output
    assert ("u-ana", "catalog-crier") in graph.installed
    everyone = crier(db, graph, "teams", "install-for", "--all")
    assert everyone.exit_code == 0, everyone.output
    assert "already installed" in everyone.output  # Ana: 409, not an error
    assert {u for u, _ in graph.installed} == {"u-casey", "u-sam", "u-ana", "u-bo"}


def test_sync_without_teams_settings_says_what_to_set(db):
    result = runner.invoke(app, ["directory", "sync", "teams"], env={
        "CRIER_DATABASE_URL": db.url.render_as_string(hide_password=False)})
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "TEAMS_APP_ID, TEAMS_APP_PASSWORD and TEAMS_TENANT_ID" in result.output
