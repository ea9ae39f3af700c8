"""Start `crier` commands as real processes, as an operator would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx

PLATFORM_ENV = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL",
                "TELEGRAM_BOT_TOKEN", "TEAMS_APP_ID")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def crier(*args: str, **env: str) -> subprocess.Popen[str]:
    """``crier ARGS`` with only the given platform settings (and ``env``)."""
    full = {k: v for k, v in os.environ.items() if k not in PLATFORM_ENV}
    full.update(env, PYTHONPATH=os.getcwd())
    return subprocess.Popen([sys.executable, "-m", "bot.cli", *args], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_http(proc: subprocess.Popen[str], url: str, seconds: float = 20) -> httpx.Response:
    """The first answer from ``url`` (while ``proc`` still runs)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, f"nothing answered at {url}"
            time.sleep(0.2)


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, then the exit code and everything it printed."""
    proc.terminate()
    output = proc.communicate(timeout=30)[0]
    return proc.returncode, output
