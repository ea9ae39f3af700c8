"""`crier serve --no-delivery` answers HTTP and sends nothing; `crier worker` runs the
delivery engine and the scheduler with no HTTP server. An operator runs them apart."""

from __future__ import annotations

import re
import signal
import time

import httpx
import pytest

from tests.factories import company, seed
from tests.fakes.slack_api import FakeSlackAPI, dm
from tests.fakes.slack_events import AVERY, CASEY, ENG, SIGNING_SECRET, identities, slack_chat
from tests.processes import crier, free_port, stop, wait_for_http

pytestmark = pytest.mark.slow
ENG1 = ENG["eng1@example.com"]


def received(fake: FakeSlackAPI, text: str) -> bool:
    return any(text in m.text for m in fake.messages(dm(ENG1)))


async def test_serve_without_delivery_and_a_worker_split_the_work(db, db_url, clock):
    seed(db, clock, company(), identities())
    with FakeSlackAPI() as fake:
        async with slack_chat(db, clock, fake) as chat:  # people use Slack meanwhile
            preview = await chat.command(CASEY, "/announce", "to:Engineering Freeze tonight")
            ann = int(re.search(r"submit:(\d+)", " ".join(preview.actions)).group(1))
            await chat.click_ephemeral(CASEY, f"submit:{ann}", preview)
            await chat.deliver()
            await chat.click(AVERY, f"approve:{ann}")  # queued for Engineering, not sent
        env = {"CRIER_DATABASE_URL": db_url, "SLACK_BOT_TOKEN": fake.token,
               "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.url,
               "CRIER_WORKING_HOURS": "off"}
        port = free_port()
        server = crier("serve", "--no-delivery", "--port", str(port), **env)
        try:
            health = wait_for_http(server, f"http://127.0.0.1:{port}/healthz")
            assert health.status_code == 200, health.text
            assert health.json()["tasks"] == {}  # no engine, no scheduler here
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            assert 'crier_task_up{task="delivery"}' not in metrics
            time.sleep(2)
            assert not received(fake, "Freeze tonight")  # the HTTP process sends nothing

            worker = crier("worker", **env)
            deadline = time.monotonic() + 30
            while not received(fake, "Freeze tonight"):
                assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
                assert time.monotonic() < deadline, "the worker delivered nothing"
                time.sleep(0.1)
            worker.send_signal(signal.SIGINT)  # Ctrl-C stops it as cleanly as SIGTERM
            output = worker.communicate(timeout=30)[0]
            assert worker.returncode == 0, output
            assert "Platforms on: slack" in output and "worker stopped" in output
            assert "Traceback" not in output
        finally:
            _, output = stop(server)
        assert "Delivery and scheduling are off here" in output
        assert "Application shutdown complete" in output
