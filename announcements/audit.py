"""The append-only audit log: every transition says who, when and what."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session

from storage.models import AuditEvent


def record(
    session: Session,
    at: datetime,
    action: str,
    *,
    actor_id: int | None = None,
    announcement_id: int | None = None,
    **detail: Any,
) -> None:
    session.add(
        AuditEvent(
            at=at,
            actor_id=actor_id,
            announcement_id=announcement_id,
            action=action,
            detail=json.dumps(detail, default=str, sort_keys=True) if detail else None,
        )
    )
