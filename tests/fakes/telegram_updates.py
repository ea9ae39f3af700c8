"""The JSON Telegram posts to a webhook (or returns from getUpdates), built the way
Telegram builds it: messages with bot_command entities, button clicks, poll answers."""

from __future__ import annotations

import itertools
import time
from typing import Any

from tests.fakes.telegram_api import ChatMessage


class Updates:
    """Builds the JSON Telegram posts to a webhook, with increasing ``update_id``."""

    def __init__(self, start: int = 700_000_000) -> None:
        self._ids = itertools.count(start)
        self._msg_ids = itertools.count(1)

    def _user(self, user_id: int, name: str = "") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": name or f"User{user_id}",
                "language_code": "en"}

    def message(self, user_id: int, text: str, *, chat_id: int | None = None,
                update_id: int | None = None) -> dict[str, Any]:
        chat_id = user_id if chat_id is None else chat_id
        chat: dict[str, Any] = (
            {"id": chat_id, "type": "private", "first_name": f"User{user_id}"}
            if chat_id > 0 else {"id": chat_id, "type": "supergroup", "title": "Shop floor"})
        msg: dict[str, Any] = {"message_id": next(self._msg_ids), "date": int(time.time()),
                               "chat": chat, "from": self._user(user_id), "text": text}
        if text.startswith("/"):
            length = len(text.split()[0])
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return {"update_id": update_id if update_id is not None else next(self._ids),
                "message": msg}

    def click(self, user_id: int, message: ChatMessage, data: str) -> dict[str, Any]:
        """The user presses the inline button with callback data ``data`` on ``message``."""
        assert data in [d for _, d in message.buttons], f"no button {data!r} on the message"
        shown: dict[str, Any] = {
            "message_id": message.message_id, "date": int(time.time()),
            "chat": {"id": message.chat_id, "type": "private", "first_name": f"User{user_id}"},
            "text": message.text or "",
        }
        if message.reply_markup:
            shown["reply_markup"] = message.reply_markup
        return {"update_id": next(self._ids), "callback_query": {
            "id": str(next(self._ids)), "from": self._user(user_id), "message": shown,
            "chat_instance": f"ci{message.chat_id}", "data": data}}

    def poll_answer(self, user_id: int, poll_id: str, option_ids: list[int]) -> dict[str, Any]:
        return {"update_id": next(self._ids), "poll_answer": {
            "poll_id": poll_id, "user": self._user(user_id), "option_ids": option_ids,
            "option_persistent_ids": [f"o{i}" for i in option_ids]}}
