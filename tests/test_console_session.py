"""The console as a person uses it: a real `crier console` process fed through a pipe,
and sessions on a real database that are stopped and started again."""

from __future__ import annotations

import io
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.app import build
from bot.console import ConsolePlatform, ConsoleSession
from bot.settings import Settings
from storage.db import Database
from tests.factories import APPROVER, COMMS, seed

CRIER = str(Path(sys.executable).with_name("crier"))


class Console:
    """A `crier console` process: lines go in through a pipe, output is read as it comes."""

    def __init__(self, db_url: str, cwd: Path) -> None:
        env = {**os.environ, "CRIER_DATABASE_URL": db_url, "CRIER_WORKING_HOURS": "off"}
        self.proc = subprocess.Popen([CRIER, "console", "--as", COMMS.email], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def type(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{line}\n" for line in lines))
        self.proc.stdin.flush()

    def wait_for(self, text: str, timeout: float) -> list[str]:
        """Output lines up to the first holding ``text``; fails after ``timeout`` seconds."""
        got: list[str] = []
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {text!r} within {timeout} s; got:\n" + "\n".join(got))
            got.append(line)
            self.seen.append(line)
            if text in line:
                return got

    def quit(self) -> str:
        self.type("quit")
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err
        return err


def test_a_scheduled_message_reaches_the_recipient_while_the_console_waits(db, clock, db_url,
                                                                           tmp_path):
    seed(db, clock)
    console = Console(db_url, tmp_path)
    try:
        console.type("/announce to:Engineering at:in 8s Deploy window opens now",
                     "click submit:1", f"as {APPROVER.email}", "click approve:1",
                     "as eng1@example.com")
        # Approved, due in a few seconds: not there yet when Engineer 1 takes the keyboard.
        before = console.wait_for("You are now Engineer 1", timeout=30)
        assert "Approved #1" in "\n".join(before)
        assert before[-1].endswith("(Engineering). Your inbox is empty.")
        # No more input: the console delivers on its own and shows what arrived.
        started = time.monotonic()
        arrived = console.wait_for("Deploy window opens now", timeout=30)
        assert time.monotonic() - started < 15
        assert any(re.fullmatch(r"\[inbox m\d+\]", line) for line in arrived)
    finally:
        err = console.quit()
    assert "Traceback" not in err
    # Piped input is echoed after the speaker's name: the transcript reads like a chat.
    transcript = "\n".join(console.seen)
    for said in ("casey.comms> /announce to:Engineering at:in 8s Deploy window opens now",
                 "casey.comms> click submit:1", f"casey.comms> as {APPROVER.email}",
                 "avery.approver> click approve:1", "avery.approver> as eng1@example.com"):
        assert said in transcript
    assert transcript.index("casey.comms> click submit:1") < transcript.index("submitted")


def session(db: Database, clock, out: io.StringIO, user: str = COMMS.email) -> ConsoleSession:
    """A console as `crier console` builds it: a new process each time (a new platform)."""
    platform = ConsolePlatform()
    runtime = build(Settings(database_url=str(db.url)), {"console": platform}, clock=clock,
                    db=db)
    return ConsoleSession(runtime.router, platform, runtime.engine, user, out,
                          scheduler=runtime.scheduler)


async def say(console: ConsoleSession, out: io.StringIO, *lines: str) -> str:
    start = out.tell()
    await console.run(lines)
    return out.getvalue()[start:]


async def test_the_inbox_survives_a_restart_and_its_buttons_still_work(db, clock):
    seed(db, clock)
    out = io.StringIO()
    first = session(db, clock, out)
    await say(first, out, "/announce to:Sales ack Quarter close on Friday", "click submit:1",
              f"as {APPROVER.email}", "click approve:1")
    before = await say(first, out, "as sales1@example.com", "inbox")
    assert "[ack:1] Got it" in before
    ref = re.search(r"\[inbox (m\d+)\]\n── Announcement from Casey", before).group(1)

    out = io.StringIO()
    again = session(db, clock, out, "sales1@example.com")  # the console started again
    after = await say(again, out, "inbox")
    assert after == before.split("inbox\n", 1)[-1].split("(type `inbox`).\n", 1)[-1]
    clicked = await say(again, out, "click ack:1")
    assert f"(message {ref} updated)" in clicked and "✓ Acknowledged #1." in clicked
    final = await say(again, out, "inbox")
    assert "✓ Acknowledged" in final and "[ack:1]" not in final
    # New messages get new numbers: none is mistaken for one sent before the restart.
    shown = await say(again, out, "as casey.comms@example.com",
                      "/announce to:Sales ack Second notice", "click submit:2",
                      f"as {APPROVER.email}", "click approve:2", "as sales1@example.com", "inbox")
    refs = re.findall(r"\[inbox (m\d+)\]", shown)
    assert len(refs) == len(set(refs)) == 2 and refs[0] == ref


async def test_switching_user_does_not_print_the_inbox_twice(db, clock):
    seed(db, clock)
    out = io.StringIO()
    console = session(db, clock, out)
    await say(console, out, "/announce to:Sales Quarter close", "click submit:1")
    switched = await say(console, out, f"as {APPROVER.email}")
    assert switched == "You are now Avery Chen <avery.approver@example.com> (People). " \
                       "1 message in your inbox (type `inbox`).\n"
    shown = await say(console, out, "inbox")
    assert shown.count("Casey Morgan asks you to approve Announcement #1") == 1
    # Back later: what arrived meanwhile is counted, and read once with `inbox`.
    await say(console, out, "as casey.comms@example.com", "/announce to:Sales Second",
              "click submit:2")
    arrived = await say(console, out, f"as {APPROVER.email}", "/crier whoami")
    assert "asks you to approve" not in arrived and "2 messages in your inbox" in arrived
    shown = await say(console, out, "inbox")
    assert shown.count("asks you to approve Announcement #2") == 1


def test_the_readme_walkthrough_says_what_the_demo_shows(tmp_path):
    """Every line of the README's walkthrough, piped into `crier demo --fresh`, works,
    and what the README says people will see is there."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### A two-minute walkthrough", 1)[1].split("\n## ", 1)[0]
    lines = [line for block in re.findall(r"```text\n(.*?)```", section, re.S)
             for line in block.splitlines() if line.strip()]
    assert len(lines) >= 12
    env = {**os.environ, "CRIER_WORKING_HOURS": "off"}
    done = subprocess.run([CRIER, "demo", "--fresh", "--db", str(tmp_path / "demo.db")],
                          input="\n".join(lines) + "\n", capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    said = done.stdout
    for line in lines:  # each echoed as typed, and none refused
        assert f"> {line}\n" in said
    assert "✗" not in said and "Traceback" not in done.stderr
    claims = re.findall(r"(?<!\*)\*([^*]+)\*(?!\*)", section)  # *what is shown*
    claims += re.findall(r"`(\[[^`]+\] [^`]+)`", section)  # `[id] Button`
    claims = [" ".join(claim.split()) for claim in claims]  # as wrapped in the README
    assert {"will reach 101 people: Engineering 101", "Acknowledged 1 of 101",
            "[approve:1] Approve"} <= set(claims)
    for claim in claims:
        assert claim in said, claim


def test_crier_demo_started_again_shows_the_same_inbox_and_its_buttons_work(tmp_path):
    def demo(*lines: str) -> str:
        done = subprocess.run([CRIER, "demo", "--db", str(tmp_path / "demo.db")],
                              input="".join(f"{line}\n" for line in lines), text=True,
                              capture_output=True, env={**os.environ,
                                                        "CRIER_WORKING_HOURS": "off"},
                              cwd=tmp_path, timeout=120)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        return done.stdout

    first = demo("/announce to:Engineering ack Please read the new on-call policy",
                 "click submit:1", f"as {APPROVER.email}", "click approve:1",
                 "as erin.eng@example.com", "inbox")
    inbox = first.split("erin.eng> inbox\n", 1)[1]
    assert "[ack:1] Got it" in inbox
    again = demo("as erin.eng@example.com", "inbox", "click ack:1")
    assert again.split("erin.eng> inbox\n", 1)[1].split("erin.eng> click")[0] == inbox
    assert "✓ Acknowledged #1." in again
