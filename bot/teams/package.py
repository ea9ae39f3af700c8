"""``crier teams package --out FILE.zip``: the app package a Teams admin uploads.

The zip holds ``manifest.json`` (schema ``MANIFEST_VERSION``; ``id`` and
``bots[0].botId`` are ``TEAMS_APP_ID``; personal and team scopes; the chat
commands of ``bot.grammar``), a 192×192 colour icon and a 32×32 outline icon
(white on transparent), both PNG, drawn here without any imaging library.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from announcements.errors import CrierError
from bot import grammar
from bot.settings import Settings

MANIFEST_VERSION = "1.17"
SCHEMA = (f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/"
          "MicrosoftTeams.schema.json")
ACCENT = (0x2B, 0x57, 0x9A)  # the colour icon's background
COMMANDS = {
    "announce": "Draft an announcement: announce to:Engineering ack Text",
    "poll": 'Draft a poll: poll to:all "Question?" "Option" "Option"',
    "remind": "Set up a recurring reminder: remind to:all every:mon 09:00 Text",
    "crier": "help, status, list, cancel, whoami, optout, report",
}


def png(width: int, height: int, pixel: Any) -> bytes:
    """An RGBA PNG whose pixel (x, y) is ``pixel(x, y)`` -> (r, g, b, a)."""
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width))
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def _megaphone(x: float, y: float) -> bool:
    """A megaphone in the unit square: a cone opening to the right, with a handle."""
    cone = 0.25 <= x <= 0.8 and abs(y - 0.45) <= 0.08 + (x - 0.25) * 0.45
    mouth = 0.2 <= x < 0.25 and abs(y - 0.45) <= 0.1
    handle = 0.38 <= x <= 0.48 and 0.55 <= y <= 0.78
    return cone or mouth or handle


def color_icon(size: int = 192) -> bytes:
    def pixel(x: int, y: int) -> tuple[int, int, int, int]:
        inside = _megaphone((x + 0.5) / size, (y + 0.5) / size)
        return (255, 255, 255, 255) if inside else (*ACCENT, 255)
    return png(size, size, pixel)


def outline_icon(size: int = 32) -> bytes:
    def pixel(x: int, y: int) -> tuple[int, int, int, int]:
        inside = _megaphone((x + 0.5) / size, (y + 0.5) / size)
        return (255, 255, 255, 255) if inside else (0, 0, 0, 0)
    return png(size, size, pixel)


def manifest(settings: Settings, version: str = "1.0.0") -> dict[str, Any]:
    if not settings.teams_app_id:
        raise CrierError("TEAMS_APP_ID is not set",
                         "Set it to the Azure bot's Microsoft App ID (see README, Microsoft "
                         "Teams), then run `crier teams package` again.")
    site = settings.public_url or "https://github.com/crier-bot/crier"
    host = urlsplit(settings.public_url).hostname if settings.public_url else None
    commands = [{"title": name, "description": COMMANDS.get(name, usage)[:128]}
                for name, usage in grammar.USAGE.items()]
    return {
        "$schema": SCHEMA, "manifestVersion": MANIFEST_VERSION, "version": version,
        "id": settings.teams_app_id,
        "developer": {"name": "Crier", "websiteUrl": site, "privacyUrl": site,
                      "termsOfUseUrl": site},
        "name": {"short": "Crier", "full": "Crier: company announcements"},
        "description": {
            "short": "Announcements, approvals, read receipts and polls",
            "full": ("Crier sends company announcements and polls to everyone in Teams, "
                     "after a second person approves them, and shows who has read them. "
                     "Type `crier help` in the chat with Crier.")},
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [{"botId": settings.teams_app_id, "scopes": ["personal", "team"],
                  "isNotificationOnly": False, "supportsFiles": False,
                  "commandLists": [{"scopes": ["personal"], "commands": commands}]}],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [host] if host else [],
    }


def write(settings: Settings, out: Path) -> Path:
    if out.suffix.lower() != ".zip":
        raise CrierError(f"{out} is not a .zip file name", "e.g. --out crier-teams.zip")
    data = manifest(settings)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(data, indent=2, ensure_ascii=False))
        z.writestr("color.png", color_icon())
        z.writestr("outline.png", outline_icon())
    return out
