"""Following up an announcement: who has not acknowledged it (`crier export pending ID`),
and why copies are still waiting (`/crier status ID`)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from announcements.figures import pct, percent
from tests.factories import COMMS, company, seed
from tests.fakes.slack_api import FakeSlackAPI, dm
from tests.fakes.slack_events import AVERY, CASEY, identities, slack_chat
from tests.harness import make_chat
from tests.test_cli import crier


def test_percentages_round_half_up_but_never_claim_all_or_none():
    assert [percent(1, 3), percent(2, 3), percent(1, 8), percent(3, 8)] == [33, 67, 13, 38]
    assert percent(199, 200) == 99 and percent(1, 1000) == 1
    assert percent(1, 2) == 50 and percent(3, 200) == 2
    assert percent(7, 7) == 100 and percent(0, 7) == 0 and pct(0, 0) == "n/a"


async def test_the_follow_up_list_and_why_copies_wait_for_working_hours(db, db_url, clock):
    # Friday 19:30 UTC: 19:30 in London and 14:30 in New York (working hours), but
    # 20:30 in Berlin, where engineers 1, 3, 5 and Erin get it on Monday at 08:00.
    clock.set(datetime(2026, 11, 27, 19, 30, tzinfo=UTC))
    chat = make_chat(db, clock)
    ann = await chat.approved("/announce to:Sales,Engineering ack Fire drill on Monday")
    await chat.click("sales1@example.com", f"ack:{ann}")
    await chat.click("eng2@example.com", f"ack:{ann}")

    status = await chat.say(COMMS.email, f"/crier status {ann}")
    # Erin, the Engineering lead, is in Berlin too.
    assert "Pending: 4 waiting for working hours, next at 08:00 in their time zone" in status
    assert "Delivery [█████████████░░░░░░░]  64%" in status  # 7 of 11, rounded as in reports
    assert "Engineering: 1 of 7 acknowledged (14%)" in status
    assert "Sales: 1 of 4 acknowledged (25%)" in status

    result = crier(db_url, "export", "pending", str(ann))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["email", "name", "department", "location", "status",
                             "delivered_at"]
    got = {r["email"]: (r["department"], r["location"], r["status"]) for r in rows}
    assert got["eng1@example.com"] == ("Engineering", "Berlin", "not delivered yet")
    assert got["eng4@example.com"] == ("Engineering", "New York", "delivered")
    assert got["sales2@example.com"] == ("Sales", "London", "delivered")
    assert "sales1@example.com" not in got and "eng2@example.com" not in got  # acknowledged
    assert len(rows) == 9  # 11 asked (7 in Engineering with Erin, 4 in Sales), 2 answered
    assert got["erin.eng@example.com"][2] == "not delivered yet"
    assert rows[0]["department"] == "Engineering" and rows[-1]["department"] == "Sales"
    assert next(r for r in rows if r["email"] == "eng4@example.com")["delivered_at"].startswith(
        "2026-11-27T19:30")


async def test_a_bad_number_for_the_follow_up_list_is_one_clear_line(db, db_url, clock, tmp_path):
    chat = make_chat(db, clock)
    plain = await chat.approved("/announce to:Sales Cake in the kitchen")
    for args, said in ((["abc"], "✗ `abc` is not an announcement number"),
                       (["999"], "✗ there is no announcement #999"),
                       ([str(2**70)], "✗ `1180591620717411303424` is not an announcement number"),
                       ([str(plain)], f"✗ #{plain} did not ask for acknowledgement"),
                       ([], "✗ `crier export pending` needs an announcement number")):
        out = tmp_path / "follow-up.csv"
        result = crier(db_url, "export", "pending", *args, "--out", str(out))
        assert result.exit_code == 2, result.output
        assert said in result.output.splitlines()[0]
        assert "Traceback" not in result.output and not out.exists()


async def test_status_names_copies_waiting_for_retry_after(db, clock):
    seed(db, clock, company(), identities())
    with FakeSlackAPI() as fake:
        async with slack_chat(db, clock, fake) as chat:
            preview = await chat.command(CASEY, "/announce", "to:Sales ack Quarter close")
            ann = next(a for a in preview.actions if a.startswith("submit:")).split(":")[1]
            await chat.click_ephemeral(CASEY, f"submit:{ann}", preview)
            await chat.deliver()
            await chat.click(AVERY, f"approve:{ann}")
            fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=30,
                      channel=dm("U202"))
            await chat.deliver()
            status = await chat.command(CASEY, "/crier", f"status {ann}")
            assert "Pending: 1 waiting for Retry-After, next try Fri 2026-11-27 15:00" in (
                status.text)
            assert "Sent 3 of 4" in status.text
