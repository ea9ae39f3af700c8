"""Conversation references: where Crier can reach a Teams user proactively.

Teams tells the bot about a personal conversation when the app is installed
(``installationUpdate``, ``conversationUpdate``) and with every message; each
time, the reference (service URL with its regional path, conversation id,
tenant, the person's ``aadObjectId``) is kept in the person's Teams
``Identity.address``. A Teams user Crier does not know yet is linked by the
email Microsoft Entra holds for them (the connector's member record), like a
Slack member. Someone with no reference has not installed the app
(``bot.teams.platform.NOT_INSTALLED``).
"""

from __future__ import annotations

from sqlmodel import col, select, update

from announcements.clock import Clock
from announcements.linking import link_verified_email
from storage.db import Database
from storage.models import Identity

PLATFORM = "teams"


def store(db: Database, aad_id: str, address: str) -> bool:
    """Keep ``address`` for the Teams account ``aad_id``; False when nobody has it."""
    with db.session() as s:
        row = s.execute(select(Identity).where(
            col(Identity.platform) == PLATFORM, col(Identity.platform_user_id) == aad_id)
        ).scalar_one_or_none()
        if row is None:
            return False
        if row.address != address:
            s.execute(update(Identity).where(col(Identity.id) == row.id).values(address=address))
        return True


def link_and_store(db: Database, clock: Clock, aad_id: str, email: str, address: str) -> bool:
    """Link ``aad_id`` to the person with ``email`` (Entra verifies it) and keep the
    reference; False when no active person has that email or either is linked already."""
    if not link_verified_email(db, clock, PLATFORM, email.strip().lower(), aad_id):
        return False
    return store(db, aad_id, address)

