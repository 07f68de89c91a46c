""":func:`desktop.heap.settle` takes what exists out of the collector's full passes, and what
is made after it is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from desktop import heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_settle_freezes_what_exists_and_later_cycles_are_still_collected(unfrozen):
    kept = [Node() for _ in range(1000)]
    before = gc.get_freeze_count()
    heap.settle()
    assert gc.get_freeze_count() >= before + len(kept)
    assert not any(obj is kept[0] for obj in gc.get_objects(generation=2))
    later = Node()
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None
