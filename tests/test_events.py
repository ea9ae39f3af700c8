"""Inbound event ids: a retry has one effect; old ids are forgotten."""

from __future__ import annotations

from datetime import timedelta

from storage.events import first_time, prune


def test_repeats_are_recognised_and_old_ids_pruned(db, clock):
    assert first_time(db, "slack", "Ev1", clock.now())
    assert not first_time(db, "slack", "Ev1", clock.now())
    assert first_time(db, "telegram", "Ev1", clock.now())  # ids are per platform
    clock.advance(timedelta(days=3))
    assert prune(db, clock.now() - timedelta(days=2)) == 2
    assert first_time(db, "slack", "Ev1", clock.now())
