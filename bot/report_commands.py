"""``/crier report [weekly]`` and ``/crier report subscribe|unsubscribe``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import select

from announcements import report_view
from announcements.errors import NotAllowed
from announcements.lifecycle import Crier
from announcements.reports import weekly
from announcements.types import Person, Reply, Role
from bot.grammar import CrierCommand
from storage.models import ReportSubscription


def handle(crier: Crier, person: Person, args: tuple[str, ...], platform: str,
           channel: str | None) -> Reply:
    grants = crier.grants(person)
    what = args[0].lower() if args else "weekly"
    if what in ("subscribe", "unsubscribe"):
        if not grants.is_admin:
            raise NotAllowed("only admins choose where the weekly report is posted",
                             "Ask an admin to run `/crier report subscribe` in this channel.")
        where = channel or person.email
        with crier.db.session() as s:
            row = s.exec(select(ReportSubscription).where(
                ReportSubscription.platform == platform, ReportSubscription.channel == where)
            ).first()
            if what == "subscribe" and row is None:
                s.add(ReportSubscription(platform=platform, channel=where,
                                         created_by_id=person.id, created_at=crier.clock.now()))
            elif what == "unsubscribe" and row is not None:
                s.delete(row)
        if what == "subscribe":
            return Reply.text("This channel will get the weekly report. "
                              "(`/crier report unsubscribe` stops it.)")
        return Reply.text("This channel will no longer get the weekly report.")
    if not (grants.has(Role.AUTHOR) or grants.has(Role.APPROVER)):
        raise NotAllowed("reports are for authors, approvers and admins",
                         "Ask an admin for the author or approver role if you need them.")
    report = weekly(crier.db, crier.clock.now(), chart=False)
    return Reply(message=report_view.message(report_view.build(report)))


def command(crier: Crier) -> Callable[[Person, CrierCommand, dict[str, Any]], Reply]:
    """The ``/crier report`` handler for ``Router.extensions``."""
    return lambda person, cmd, context: handle(
        crier, person, cmd.args, context.get("platform", "console"), context.get("channel"))
