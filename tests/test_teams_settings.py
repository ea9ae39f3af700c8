"""Teams configuration: the names of the contract, checked at start-up, and
``crier doctor``'s Teams lines (a wrong app password is one clear line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from announcements.errors import CrierError
from bot.cli import app
from bot.settings import load_settings
from storage.db import Database
from tests.fakes.teams_identity import APP_ID, PASSWORD, TENANT, FakeIdentity

runner = CliRunner()
TEAMS = {"TEAMS_APP_ID": APP_ID, "TEAMS_APP_PASSWORD": PASSWORD, "TEAMS_TENANT_ID": TENANT}


def test_three_secrets_turn_teams_on_with_microsofts_default_urls():
    settings = load_settings(TEAMS, dotenv=False)
    assert settings.teams_enabled
    assert settings.teams_token_endpoint == (
        f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
    assert settings.teams_openid_metadata_url == (
        "https://login.botframework.com/v1/.well-known/openidconfiguration")
    assert settings.teams_graph_url == "https://graph.microsoft.com/v1.0"
    assert PASSWORD not in repr(settings)


@pytest.mark.parametrize(("env", "words"), [
    ({"TEAMS_APP_ID": APP_ID}, "TEAMS_APP_PASSWORD and TEAMS_TENANT_ID are not set"),
    ({**TEAMS, "TEAMS_TENANT_ID": "contoso"}, "TEAMS_TENANT_ID='contoso' is not a Microsoft "
                                              "Entra tenant id (a GUID)"),
    ({**TEAMS, "TEAMS_APP_ID": "crier-bot"}, "is not an Azure app id (a GUID)"),
    ({**TEAMS, "TEAMS_TOKEN_URL": "login.microsoftonline.com"}, "is not an http(s):// URL"),
    ({**TEAMS, "TEAMS_OPENID_METADATA_URL": "ftp://x"}, "is not an http(s):// URL"),
])
def test_bad_teams_settings_are_one_line(env, words):
    with pytest.raises(CrierError) as caught:
        load_settings(env, dotenv=False)
    assert words in caught.value.message and PASSWORD not in str(caught.value)


def doctor(tmp_path: Path, identity: FakeIdentity, **env: str):
    Database(f"sqlite:///{tmp_path}/crier.db").migrate()
    base = {"CRIER_DATABASE_URL": f"sqlite:///{tmp_path}/crier.db", **TEAMS,
            "TEAMS_TOKEN_URL": identity.token_url,
            "TEAMS_OPENID_METADATA_URL": identity.metadata_url}
    return runner.invoke(app, ["doctor"], env={**base, **env})


def test_doctor_checks_the_teams_credentials(tmp_path: Path):
    with FakeIdentity() as identity:
        result = doctor(tmp_path, identity)
    assert result.exit_code == 0, result.output
    assert f"✓ Teams: app {APP_ID} gets Bot Framework tokens" in result.output
    assert "✓ Teams: the Bot Framework's signing keys are readable" in result.output
    assert "/api/messages" in result.output
    assert PASSWORD not in result.output


def test_doctor_says_a_wrong_app_password_in_one_line(tmp_path: Path):
    with FakeIdentity() as identity:
        result = doctor(tmp_path, identity, TEAMS_APP_PASSWORD="not-the-secret")
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "not-the-secret" not in result.output
    wrong = [line for line in result.output.splitlines() if line.startswith("✗")]
    assert len(wrong) == 1
    assert "Microsoft refused the Teams app credentials (invalid_client: AADSTS7000215" \
        in wrong[0] and "TEAMS_APP_PASSWORD" in wrong[0]


def test_serve_wires_teams_when_its_three_secrets_are_set(db):
    from bot.serve import build_server

    settings = load_settings({**TEAMS, "CRIER_DATABASE_URL": str(db.url)}, dotenv=False)
    app, platforms = build_server(settings, db)
    assert platforms == ["teams"]
    assert {"/api/messages", "/teams/charts/{name}"} <= {getattr(r, "path", "")
                                                        for r in app.routes}
