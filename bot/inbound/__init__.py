"""One inbound pipeline for every platform: verify (adapter) -> deduplicate ->
identify -> parse -> dispatch -> typed reply -> present (adapter)."""

from bot.inbound.pipeline import (
    CLICK_WINDOW,
    NOT_IN_DIRECTORY,
    TRY_AGAIN,
    Inbound,
    Pipeline,
    click_keys,
    refusal,
)
from bot.inbound.present import Showing, showing

__all__ = ["CLICK_WINDOW", "NOT_IN_DIRECTORY", "TRY_AGAIN", "Inbound", "Pipeline", "Showing",
           "click_keys", "refusal", "showing"]
