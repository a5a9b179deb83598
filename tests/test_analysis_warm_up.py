"""A rescan loads the tone model in a thread while it waits for the server."""

from __future__ import annotations

from inbox_filter.analysis import Analyser
from inbox_filter.core import politeness
from inbox_filter.runctx import RunContext


def test_warm_up_loads_the_model_once_in_a_thread() -> None:
    politeness.load_model.cache_clear()
    thread = Analyser(RunContext()).warm_up()
    assert thread is not None
    thread.join(timeout=30)
    assert politeness.load_model.cache_info().currsize == 1
    # Loaded: a later scan (a daemon's) starts no thread.
    assert Analyser(RunContext()).warm_up() is None
