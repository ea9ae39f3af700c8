"""`crier serve`: health and metrics, in-process and as a real process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
from starlette.testclient import TestClient

from bot.app import build
from bot.console import ConsolePlatform
from bot.server import create_app
from bot.settings import Settings
from storage.db import Database
from tests.harness import make_chat


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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, CRIER_DATABASE_URL=db_url)
    for key in ("SLACK_BOT_TOKEN", "TELEGRAM_BOT_TOKEN", "TEAMS_APP_ID"):
        env.pop(key, None)
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "crier serve did not start"
                time.sleep(0.2)
        assert response.status_code == 200, response.text
        assert "crier_outbox_rows" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert "No chat platform is configured" in output
    assert "Application shutdown complete" in output  # SIGTERM ends it cleanly
