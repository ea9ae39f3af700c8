"""Logging: one format for every logger (Crier's, uvicorn's, the SDKs'), text or JSON,
and secrets taken out of every record.

Rule: no configured token, secret or database password, no ``/bot<token>/`` URL
and nothing shaped like a Slack token (``xox…-``, ``xapp-``) reaches a log line,
from any logger at any level, in the message, its arguments or exception text.
The scrubbing happens where records are made (``logging.setLogRecordFactory``),
so every handler, including ones other code adds, only ever sees clean records.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import quote

from bot.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HIDDEN = "***"
#: Shapes of secrets that are hidden even when not configured here.
_SHAPES = re.compile(
    r"(?P<bot>/bot)\d+:[A-Za-z0-9_-]+"  # a Telegram Bot API URL carries the token
    r"|(?P<slack>xox[a-z]-|xapp-)[A-Za-z0-9-]+"
)
#: Longest first, so a secret that contains another is hidden whole. Replaced, never
#: changed in place: threads read it without a lock.
_secrets: tuple[str, ...] = ()
_lock = threading.Lock()
_installed = False


def redact(text: str) -> str:
    """``text`` with every known secret and secret-shaped string replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, HIDDEN)
    return _SHAPES.sub(lambda m: (m.group("bot") or m.group("slack") or "") + HIDDEN, text)


def scrub(record: logging.LogRecord) -> logging.LogRecord:
    """Take secrets out of a record's message, arguments, exception and stack text."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string is logged as it stands
        message = f"{record.msg} {record.args}"
    clean = redact(message)
    if clean != message or record.args:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def install_redaction(secrets: list[str] | tuple[str, ...] = ()) -> None:
    """Hide ``secrets`` (and secret shapes) in every log record from now on."""
    global _installed, _secrets
    with _lock:
        known = set(_secrets)
        for secret in secrets:
            if secret and len(secret) >= 4:
                known.update({secret, quote(secret, safe="")})
        _secrets = tuple(sorted(known, key=len, reverse=True))
        if _installed:
            return
        make = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return scrub(make(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True


class RedactFilter(logging.Filter):
    """For handlers: scrubs records made before redaction was installed."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub(record)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message[, exc]."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Send every logger's records to ``stream`` (stderr) in ``CRIER_LOG_FORMAT`` at
    ``CRIER_LOG_LEVEL``. Run uvicorn with ``uvicorn_options()`` so its lines look the same."""
    install_redaction(settings.secrets())
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactFilter())
    handler.crier = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "crier", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    level = logging.getLevelName(settings.log_level.upper())
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # One line per HTTP request to the platforms is noise below DEBUG.
    quiet = logging.DEBUG if level == logging.DEBUG else logging.WARNING
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(quiet)
    return handler


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn keeps its hands off logging: its records go through Crier's handler."""
    return {"log_config": None, "log_level": settings.log_level.lower()}
