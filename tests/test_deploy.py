"""The shipped systemd units start commands this `crier` has, with options it accepts."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import typer

from bot.cli import app

DEPLOY = Path(__file__).parent.parent / "deploy"


def _unit(name: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (DEPLOY / name).read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            values.setdefault(key.strip(), value.strip())
    return values


@pytest.mark.parametrize("name", ["crier.service", "crier-worker.service"])
def test_units_run_a_real_command_in_the_writable_working_directory(name: str):
    unit = _unit(name)
    argv = shlex.split(unit["ExecStart"])
    assert argv[0] == "/opt/crier/venv/bin/crier"
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    if argv[1] not in commands:
        pytest.skip(f"`crier {argv[1]}` is not in this version")
    commands[argv[1]].make_context(argv[1], argv[2:])  # raises on an unknown option
    assert unit["WorkingDirectory"] in unit["ReadWritePaths"].split()
    assert unit["User"] == "crier" and unit["KillSignal"] == "SIGTERM"
