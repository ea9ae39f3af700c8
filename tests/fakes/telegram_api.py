"""A fake Telegram Bot API: a real HTTP server on 127.0.0.1 (port 0) in its own thread.

It speaks the methods Crier uses under ``/bot<token>/<method>``, records every
request body, keeps each chat's messages as a user would see them, and checks
what Telegram checks (HTML entities, 4,096 characters, 64-byte callback data,
poll sizes), answering with Telegram's own error texts. Failures can be
injected: 429 with ``retry_after``, 5xx, and 403 for chats that blocked the bot.

    with FakeTelegramAPI() as api:
        settings = Settings(telegram_bot_token=api.token, telegram_api_url=api.base_url)

It also works as an async context manager, and from a benchmark script;
``tests.fakes.telegram_updates.Updates`` builds the updates Telegram would send.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer

TOKEN = "123456:TEST-token"
BLOCKED = "Forbidden: bot was blocked by the user"
#: Parameters PTB sends as plain strings; everything else is JSON-encoded.
TEXT_FIELDS = frozenset({
    "text", "caption", "question", "url", "secret_token", "callback_query_id", "parse_mode",
    "description", "short_description", "explanation",
})
ALLOWED_TAGS = frozenset({
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "blockquote", "tg-spoiler", "span", "tg-emoji",
})
_TAG = re.compile(r"<(/?)([a-z][a-z-]*)(\s[^<>]*)?>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> str:
    """The visible text of Telegram HTML; raises ``ApiError`` where Telegram would."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    while pos < len(text):
        c = text[pos]
        if c == "<":
            m = _TAG.match(text, pos)
            if m is None or m.group(2) not in ALLOWED_TAGS:
                raise ApiError(400, "Bad Request: can't parse entities: unsupported start tag "
                               f"at byte offset {pos}")
            if m.group(1):
                if not stack or stack.pop() != m.group(2):
                    raise ApiError(400, "Bad Request: can't parse entities: can't find end tag "
                                   f"corresponding to start tag at byte offset {pos}")
            else:
                stack.append(m.group(2))
            pos = m.end()
        elif c == "&":
            m = _ENTITY.match(text, pos)
            if m is None:
                raise ApiError(400, "Bad Request: can't parse entities: character '&' is "
                               f"reserved and must be escaped at byte offset {pos}")
            out.append(html.unescape(m.group(0)))
            pos = m.end()
        elif c == ">":
            raise ApiError(400, "Bad Request: can't parse entities: character '>' is reserved")
        else:
            out.append(c)
            pos += 1
    if stack:
        raise ApiError(400, f"Bad Request: can't parse entities: unclosed tag <{stack[-1]}>")
    return "".join(out)


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class ChatMessage:
    """A message as the chat shows it."""

    chat_id: int
    message_id: int
    text: str | None = None  # visible text
    html: str | None = None  # what the bot sent, before parsing
    reply_markup: dict[str, Any] | None = None
    poll: dict[str, Any] | None = None
    photo: bytes | None = None
    deleted: bool = False
    edits: int = 0

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


@dataclass
class Failure:
    method: str | None
    status: int
    description: str
    retry_after: int | None
    times: int
    chat_id: int | None


class FakeTelegramAPI(ThreadedServer):
    def __init__(self, token: str = TOKEN, username: str = "crier_test_bot") -> None:
        self.token = token
        self.username = username
        self.calls: list[Call] = []
        self.messages: dict[int, list[ChatMessage]] = {}
        self.blocked: set[int] = set()
        self.webhook: dict[str, Any] = {}
        self._failures: list[Failure] = []
        self._updates: list[dict[str, Any]] = []
        self._ids = itertools.count(100)
        self._poll_ids = itertools.count(5_000_000_000_000_000_001)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._new_update: asyncio.Event | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What ``TELEGRAM_API_URL`` should be: the token is appended by the client."""
        return f"http://127.0.0.1:{self.port}/bot"

    label = "fake Telegram API"
    max_body = 50 * 1024 * 1024

    def on_loop(self) -> None:
        self._new_update = asyncio.Event()

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._handle)

    # -- what tests set up and look at ----------------------------------------------

    def block(self, chat_id: int | str) -> None:
        """The user behind ``chat_id`` blocked the bot: every send there gets 403."""
        with self._lock:
            self.blocked.add(int(chat_id))

    def fail(self, method: str | None, status: int, description: str | None = None, *,
             retry_after: int | None = None, times: int = 1,
             chat_id: int | str | None = None) -> None:
        """The next ``times`` calls of ``method`` (any method if None) fail."""
        if description is None:
            description = {429: f"Too Many Requests: retry after {retry_after}",
                           500: "Internal Server Error", 502: "Bad Gateway"}.get(
                               status, f"Error {status}")
        with self._lock:
            self._failures.append(Failure(method, status, description, retry_after, times,
                                          int(chat_id) if chat_id is not None else None))

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for ``getUpdates`` (long-polling mode)."""
        with self._lock:
            self._updates.append(update)
        if self._loop is not None and self._new_update is not None:
            self._loop.call_soon_threadsafe(self._new_update.set)

    def requests(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if method is None or c.method == method]

    def chat(self, chat_id: int | str) -> list[ChatMessage]:
        """The messages a user sees in ``chat_id``, oldest first (deleted ones gone)."""
        with self._lock:
            return [m for m in self.messages.get(int(chat_id), []) if not m.deleted]

    def find(self, chat_id: int | str, message_id: int) -> ChatMessage | None:
        with self._lock:
            return self._find(int(chat_id), int(message_id))

    def poll(self, poll_id: str) -> ChatMessage | None:
        with self._lock:
            return next((m for ms in self.messages.values() for m in ms
                         if m.poll and m.poll["id"] == poll_id), None)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    # -- the server -----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        method = request.match_info["method"]
        params, files = await _read(request)
        with self._lock:
            self.calls.append(Call(method, params, files))
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(ApiError(404, "Not Found: method not found"))
        try:
            self._maybe_fail(method, params)
            if method == "getUpdates":
                result = await self._get_updates(params)
            else:
                with self._lock:
                    result = handler(params, files)
        except ApiError as exc:
            return _error(exc)
        return web.json_response({"ok": True, "result": result})

    def _maybe_fail(self, method: str, params: dict[str, Any]) -> None:
        chat = params.get("chat_id")
        chat_id = int(chat) if isinstance(chat, int | str) and str(chat).lstrip("-").isdigit() \
            else None
        with self._lock:
            for f in self._failures:
                if f.times > 0 and f.method in (None, method) and f.chat_id in (None, chat_id):
                    f.times -= 1
                    raise ApiError(f.status, f.description, f.retry_after)
            if chat_id in self.blocked and method != "answerCallbackQuery":
                raise ApiError(403, BLOCKED)

    # -- methods (called with the lock held) -------------------------------------

    def _m_getMe(self, p: dict[str, Any], f: dict[str, bytes]) -> dict[str, Any]:
        return {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "Crier",
                "username": self.username, "can_join_groups": True,
                "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _m_sendMessage(self, p: dict[str, Any], f: dict[str, bytes]) -> dict[str, Any]:
        text = self._text(p, "text", 4096, "message is too long")
        markup = _markup(p.get("reply_markup"))
        msg = self._add(int(p["chat_id"]), text=text, html=p["text"], reply_markup=markup)
        return self._message_json(msg)

    def _m_editMessageText(self, p: dict[str, Any], f: dict[str, bytes]) -> dict[str, Any]:
        msg = self._target(p, "message to edit not found")
        text = self._text(p, "text", 4096, "MESSAGE_TOO_LONG")
        markup = _markup(p.get("reply_markup"))
        if msg.html == p["text"] and msg.reply_markup == markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                           "content and reply markup are exactly the same as a current content "
                           "and reply markup of the message")
        msg.text, msg.html, msg.reply_markup = text, p["text"], markup
        msg.edits += 1
        return self._message_json(msg)

    def _m_editMessageReplyMarkup(self, p: dict[str, Any], f: dict[str, bytes]) -> dict[str, Any]:
        msg = self._target(p, "message to edit not found")
        markup = _markup(p.get("reply_markup"))
        if msg.reply_markup == markup:
            raise ApiError(400, "Bad Request: message is not modified")
        msg.reply_markup = markup
        msg.edits += 1
        return self._message_json(msg)

    def _m_deleteMessage(self, p: dict[str, Any], f: dict[str, bytes]) -> bool:
        msg = self._target(p, "message to delete not found")
        msg.deleted = True
        return True

    def _m_sendPoll(self, p: dict[str, Any], f: dict[str, bytes]) -> dict[str, Any]:
        question = str(p.get("question", ""))
        options = [o["text"] if isinstance(o, dict) else str(o) for o in p.get("options", [])]
        if not 1 <= len(question) <= 300:
            raise ApiError(400, "Bad Request: poll question length must not exceed 300")
        if not 2 <= len(options) <= 10:
            raise ApiError(400, "Bad Request: poll must have 2-10 options")
        if any(not 1 <= len(o) <= 100 for o in options):
            raise ApiError(400, "Bad Request: poll options length must not exceed 100")
        poll = {
            "id": str(next(self._poll_ids)), "question": question,
            "options": [{"text": o, "voter_count": 0, "persistent_id": f"o{i}"}
                        for i, o in enumerate(options)],
            "total_voter_count": 0, "is_closed": bool(p.get("is_closed", False)),
            "is_anonymous": p.get("is_anonymous", True) is not False, "type": "regular",
            "allows_multiple_answers": bool(p.get("allows_multiple_answers", False)),
            "allows_revoting": p.get("allows_revoting", True) is not False,
            "members_only": bool(p.get("members_only", False)),
        }
        msg = self._add(int(p["chat_id"]), poll=poll)
        return self._message_json(msg)

    def _m_stopPoll(self, p: dict[str, Any], f: dict[str, bytes]) -> dict[str, Any]:
        msg = self._target(p, "message with poll to stop not found")
        if msg.poll is None:
            raise ApiError(400, "Bad Request: message with poll to stop not found")
        if msg.poll["is_closed"]:
            raise ApiError(400, "Bad Request: poll has already been closed")
        msg.poll["is_closed"] = True
        return dict(msg.poll)

    def _m_sendPhoto(self, p: dict[str, Any], f: dict[str, bytes]) -> dict[str, Any]:
        if "photo" not in f:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        caption = self._text(p, "caption", 1024, "message caption is too long") \
            if p.get("caption") else None
        msg = self._add(int(p["chat_id"]), text=caption, html=p.get("caption"), photo=f["photo"])
        return self._message_json(msg)

    def _m_answerCallbackQuery(self, p: dict[str, Any], f: dict[str, bytes]) -> bool:
        if len(str(p.get("text", ""))) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    def _m_setMyCommands(self, p: dict[str, Any], f: dict[str, bytes]) -> bool:
        for c in p.get("commands", []):
            if not re.fullmatch(r"[a-z0-9_]{1,32}", c["command"]):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        return True

    def _m_setWebhook(self, p: dict[str, Any], f: dict[str, bytes]) -> bool:
        secret = str(p.get("secret_token", ""))
        if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = dict(p)
        return True

    def _m_deleteWebhook(self, p: dict[str, Any], f: dict[str, bytes]) -> bool:
        self.webhook = {}
        return True

    def _m_getUpdates(self, p: dict[str, Any], f: dict[str, bytes]) -> list[Any]:
        raise AssertionError("served by _get_updates")  # pragma: no cover

    async def _get_updates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook.get("url"):
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(p.get("offset") or 0)
        deadline = time.monotonic() + min(float(p.get("timeout") or 0), 2.0)
        assert self._new_update is not None
        while True:
            with self._lock:
                if offset:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = list(self._updates[: int(p.get("limit") or 100)])
            left = deadline - time.monotonic()
            if ready or left <= 0:
                return ready
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), left)

    # -- helpers ----------------------------------------------------------------

    def _text(self, p: dict[str, Any], key: str, limit: int, too_long: str) -> str:
        raw = str(p.get(key, ""))
        visible = parse_html(raw) if str(p.get("parse_mode", "")).upper() == "HTML" else raw
        if not visible.strip():
            raise ApiError(400, f"Bad Request: {key} must be non-empty")
        if utf16_len(visible) > limit:
            raise ApiError(400, f"Bad Request: {too_long}")
        for _label, data in ChatMessage(0, 0, reply_markup=_markup(p.get("reply_markup"))).buttons:
            if not 1 <= len(data.encode()) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return visible

    def _add(self, chat_id: int, **kw: Any) -> ChatMessage:
        msg = ChatMessage(chat_id, next(self._ids), **kw)
        self.messages.setdefault(chat_id, []).append(msg)
        return msg

    def _find(self, chat_id: int, message_id: int) -> ChatMessage | None:
        return next((m for m in self.messages.get(chat_id, [])
                     if m.message_id == message_id and not m.deleted), None)

    def _target(self, p: dict[str, Any], missing: str) -> ChatMessage:
        msg = self._find(int(p.get("chat_id", 0)), int(p.get("message_id", 0)))
        if msg is None:
            raise ApiError(400, f"Bad Request: {missing}")
        return msg

    def _message_json(self, msg: ChatMessage) -> dict[str, Any]:
        chat: dict[str, Any] = (
            {"id": msg.chat_id, "type": "private", "first_name": f"User {msg.chat_id}"}
            if msg.chat_id > 0 else {"id": msg.chat_id, "type": "group", "title": "Group"})
        out: dict[str, Any] = {
            "message_id": msg.message_id, "date": int(time.time()), "chat": chat,
            "from": {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "Crier",
                     "username": self.username},
        }
        if msg.edits:
            out["edit_date"] = int(time.time())
        if msg.poll is not None:
            out["poll"] = msg.poll
        elif msg.photo is not None:
            out["photo"] = [{"file_id": f"photo{msg.message_id}",
                             "file_unique_id": f"u{msg.message_id}", "width": 800,
                             "height": 600, "file_size": len(msg.photo)}]
            if msg.text:
                out["caption"] = msg.text
        else:
            out["text"] = msg.text
        if msg.reply_markup:
            out["reply_markup"] = msg.reply_markup
        return out


async def _read(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if request.content_type == "application/json":
        params = await request.json()
        return params, files
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            files[key] = value.file.read()
        elif isinstance(value, bytes | bytearray):
            files[key] = bytes(value)
        elif key in TEXT_FIELDS:
            params[key] = value
        else:
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
    for key in [k for k, v in params.items() if isinstance(v, str) and v.startswith("attach://")]:
        name = params[key].removeprefix("attach://")
        if name in files:
            files[key] = files.pop(name)
    return params, files


def _markup(raw: Any) -> dict[str, Any] | None:
    if raw in (None, "", {}):
        return None
    markup = json.loads(raw) if isinstance(raw, str) else raw
    if not markup.get("inline_keyboard"):
        return None
    return dict(markup)


def _error(exc: ApiError) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": exc.status, "description": exc.description}
    if exc.retry_after is not None:
        body["parameters"] = {"retry_after": exc.retry_after}
    return web.json_response(body, status=exc.status)
