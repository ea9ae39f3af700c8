"""``crier teams package``: a zip the Teams admin center accepts."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

from typer.testing import CliRunner

from bot import grammar
from bot.cli import app
from tests.fakes.teams_identity import APP_ID, PASSWORD, TENANT

runner = CliRunner()


def pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGBA pixels of a PNG written without filters."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == struct.unpack(
            ">I", data[pos + 8 + length:pos + 12 + length])[0]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 6)  # 8-bit RGBA
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * 4
    out = []
    for y in range(height):
        row = raw[y * stride + 1:(y + 1) * stride]
        out += [row[i:i + 4] for i in range(0, len(row), 4)]
    return width, height, out


def test_the_package_holds_manifest_and_both_icons(tmp_path: Path):
    zip_path = tmp_path / "crier-teams.zip"
    env = {"TEAMS_APP_ID": APP_ID, "TEAMS_APP_PASSWORD": PASSWORD, "TEAMS_TENANT_ID": TENANT,
           "CRIER_PUBLIC_URL": "https://crier.example.com",
           "CRIER_DATABASE_URL": f"sqlite:///{tmp_path}/crier.db"}
    result = runner.invoke(app, ["teams", "package", "--out", str(zip_path)], env=env)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(zip_path) as z:
        assert sorted(z.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(z.read("manifest.json"))
        color, outline = z.read("color.png"), z.read("outline.png")
    assert manifest["id"] == APP_ID and manifest["bots"][0]["botId"] == APP_ID
    assert set(manifest["bots"][0]["scopes"]) == {"personal", "team"}
    titles = [c["title"] for c in manifest["bots"][0]["commandLists"][0]["commands"]]
    assert titles == list(grammar.USAGE)
    assert manifest["validDomains"] == ["crier.example.com"]
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    width, height, colour_pixels = pixels(color)
    assert (width, height) == (192, 192) and all(p[3] == 255 for p in colour_pixels)
    width, height, outline_pixels = pixels(outline)
    assert (width, height) == (32, 32)
    assert {bytes(p) for p in outline_pixels} == {b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"}


def test_package_without_an_app_id_says_what_to_set(tmp_path: Path):
    result = runner.invoke(app, ["teams", "package", "--out", str(tmp_path / "x.zip")],
                           env={"CRIER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"})
    assert result.exit_code != 0 and "TEAMS_APP_ID is not set" in result.output
    assert "Traceback" not in result.output
