"""The employee directory: who works here, on which chat accounts, with which roles.

- ``records``: the neutral ``PersonRecord`` every source produces, and the results.
- ``csvfile``: ``crier directory import FILE.csv`` read and checked line by line.
- ``upsert``: the one way records enter the directory, with its rules.
- ``plan``: what is stored, and the statements that change it.
- ``places``: one spelling per department and location; typos caught.
- ``roles``: granting, revoking and listing roles; the last admin stays.

Slack sync (``bot/slack/sync.py``) and the Microsoft Graph sync to come turn
their platform's members into ``PersonRecord``s and call ``upsert.apply``.
"""

from announcements.directory.csvfile import (
    EXPECTED_HEADER,
    OPTIONAL_COLUMNS,
    PLATFORM_COLUMNS,
    REQUIRED_COLUMNS,
    import_csv,
)
from announcements.directory.records import (
    DirectoryImportError,
    ImportResult,
    PersonRecord,
    UpsertPolicy,
)
from announcements.directory.roles import (
    ANY_SCOPE,
    LOCATION_PREFIX,
    Holder,
    describe_grant,
    grant_role,
    list_roles,
    parse_role,
    resolve_scope,
    revoke_role,
)
from announcements.directory.upsert import apply

__all__ = [
    "ANY_SCOPE", "EXPECTED_HEADER", "LOCATION_PREFIX", "OPTIONAL_COLUMNS", "PLATFORM_COLUMNS",
    "REQUIRED_COLUMNS", "DirectoryImportError", "Holder", "ImportResult", "PersonRecord",
    "UpsertPolicy", "apply", "describe_grant", "grant_role", "import_csv", "list_roles",
    "parse_role", "resolve_scope", "revoke_role",
]
