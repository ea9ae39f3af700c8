"""Where Crier keeps personal data, and what an erasure does to each place.

This list is the one source of truth: ``docs/privacy.md`` explains it, the
privacy export reads every place it names, the erasure applies each rule, and a
test checks that every column referring to a person (every foreign key to
``person.id``) is listed here with a rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Rule(StrEnum):
    """What ``crier privacy erase`` does to a place."""

    PSEUDONYMIZE = "pseudonymize"  # the value is replaced; the row stays for counts
    DELETE = "delete"  # the rows go
    KEEP_BY_ID = "keep (refers to the pseudonymized person by id)"
    REWRITE = "rewrite (the person's email is replaced by the pseudonym)"
    EXPIRES = "expires (purged on its own within the stated time)"


@dataclass(frozen=True)
class Place:
    table: str
    columns: tuple[str, ...]
    rule: Rule
    why: str


PERSONAL_DATA: tuple[Place, ...] = (
    Place("person", ("email", "name", "location", "title", "timezone"), Rule.PSEUDONYMIZE,
          "email becomes erased-ID@erased.invalid, name 'Erased person #ID', location and "
          "title are cleared, timezone UTC, the person is inactive; department stays so "
          "per-department counts do not change"),
    Place("identity", ("person_id", "platform_user_id", "address"), Rule.DELETE,
          "chat accounts and where to reach them"),
    Place("link_code", ("person_id", "platform_user_id"), Rule.DELETE,
          "one-time linking codes (only hashes of the codes)"),
    Place("role_grant", ("person_id",), Rule.DELETE,
          "roles; refused when it would remove the last admin"),
    Place("author_quota", ("person_id",), Rule.DELETE,
          "an author's daily quota on audience size (set by admins)"),
    Place("announcement", ("author_id", "approved_by_id"), Rule.KEEP_BY_ID,
          "who wrote and who approved an announcement stays traceable"),
    Place("announcement", ("audience",), Rule.REWRITE,
          "an audience may name a person as @email"),
    Place("correction", ("editor_id", "decided_by_id"), Rule.KEEP_BY_ID,
          "who edited and who approved an edit"),
    Place("delivery", ("person_id",), Rule.KEEP_BY_ID,
          "one row per recipient keeps delivered/failed counts right"),
    Place("delivery", ("address", "message_ref", "error"), Rule.PSEUDONYMIZE,
          "where the copy went on the platform: cleared"),
    Place("receipt", ("person_id",), Rule.KEEP_BY_ID, "acknowledgement counts"),
    Place("vote", ("person_id",), Rule.KEEP_BY_ID, "poll counts"),
    Place("opt_out", ("person_id",), Rule.KEEP_BY_ID, "opt-out counts in reports"),
    Place("report_subscription", ("channel",), Rule.REWRITE,
          "a report subscribed in a direct conversation names the person's email"),
    Place("report_subscription", ("created_by_id",), Rule.KEEP_BY_ID, "who subscribed"),
    Place("audit_event", ("actor_id", "subject_id", "detail"), Rule.KEEP_BY_ID,
          "append-only; people appear by id only (person#ID in details), so the "
          "pseudonymized person row is all that changes"),
    Place("legal_hold", ("person_id",), Rule.KEEP_BY_ID,
          "a hold refuses the erasure; it is released first"),
    Place("inbound_event", ("event_id",), Rule.DELETE,
          "button-press keys name the platform account (click:ACCOUNT:…); "
          "the pipeline also purges them after its deduplication window"),
    Place("link_failure", ("account_key",), Rule.EXPIRES,
          "a hash of a chat account that typed a wrong code, kept one hour"),
)

#: Retention (``CRIER_RETENTION_DAYS``) deletes these after the period; counts are kept
#: in ``announcement_tally``.
RETAINED = ("delivery", "receipt", "vote")


def places(table: str) -> list[Place]:
    return [p for p in PERSONAL_DATA if p.table == table]
