"""`crier serve`: health and metrics, in-process and as a real process."""

from __future__ import annotations

import httpx
from starlette.testclient import TestClient

from bot.app import build
from bot.console import ConsolePlatform
from bot.server import create_app
from bot.settings import Settings
from bot.slack.platform import make_platform
from storage.db import Database
from tests.harness import make_chat
from tests.processes import crier, free_port, stop, wait_for_http


async def test_health_and_metrics_report_the_outbox(db, clock):
    chat = make_chat(db, clock)
    await chat.approved("/announce to:Sales Numbers are in")
    with TestClient(create_app(chat.runtime, run_workers=False)) as client:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok" and health.json()["platforms"] == ["console"]
        metrics = client.get("/metrics").text
    # 4 in Sales, 2 approval requests (Avery, the admin), 1 outcome to the author.
    assert 'crier_outbox_rows{platform="console",status="delivered"} 7.0' in metrics
    assert "crier_database_up 1.0" in metrics


def test_metrics_show_each_lanes_current_rate(db, clock):
    slack = make_platform(Settings(slack_bot_token="xoxb-1", slack_signing_secret="x"))
    settings = Settings(database_url=str(db.url), extra={"CRIER_RATE_LIMIT_SLACK": "12,1,10,60"})
    runtime = build(settings, {"slack": slack, "console": ConsolePlatform()}, clock=clock, db=db)
    with TestClient(create_app(runtime, run_workers=False)) as client:
        metrics = client.get("/metrics").text
    assert 'crier_lane_rate_per_second{platform="slack"} 12.0' in metrics
    assert 'crier_lane_rate_per_second{platform="console"} 0.0' in metrics


def test_health_says_when_the_database_goes_away(db, clock):
    runtime = build(Settings(database_url=str(db.url)), {"console": ConsolePlatform()},
                    clock=clock, db=db)
    runtime.db = Database("postgresql://crier@127.0.0.1:1/nothing")  # the server went down
    with TestClient(create_app(runtime, run_workers=False)) as client:
        health = client.get("/healthz")
        assert health.status_code == 503
        assert "cannot reach the database" in health.json()["database"]
        assert "crier_database_up 0.0" in client.get("/metrics").text


def test_crier_serve_runs_as_a_process(db_url, db):
    port = free_port()
    proc = crier("serve", "--port", str(port), CRIER_DATABASE_URL=db_url)
    try:
        response = wait_for_http(proc, f"http://127.0.0.1:{port}/healthz")
        assert response.status_code == 200, response.text
        assert response.json()["tasks"] == {"delivery": "up", "scheduler": "up"}
        assert "crier_outbox_rows" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        _, output = stop(proc)
    assert "No chat platform is configured" in output
    assert "Application shutdown complete" in output  # SIGTERM ends it cleanly
