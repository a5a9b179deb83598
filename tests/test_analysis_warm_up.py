"""Warming up: a rescan loads the tone model in a thread while it waits for the server;
a large scan does its first chunks itself while its worker starts."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence

from inbox_filter.analysis import Analyser, _Shared
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


def _double(items: Sequence[int]) -> tuple[list[int], dict[str, float]]:
    return [2 * i for i in items], {"parse": 0.0}


def test_chunks_stay_here_until_the_worker_has_started() -> None:
    """While the worker is still starting (a new interpreter, imports, the model), its
    chunks are not queued in the pool, where this process would have to wait for them:
    this process does them. Once started, the worker is given chunks again."""
    analyser = Analyser(RunContext())
    analyser.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # type: ignore[assignment]
    starting: concurrent.futures.Future[None] = concurrent.futures.Future()
    analyser.ready = starting
    try:
        shared = _Shared.submit(analyser, _double, list(range(10)), 2)
        assert all(c.future is None for c in shared.chunks)  # nothing given yet
        assert [x for part in shared.results() for x in part] == [2 * i for i in range(10)]
        assert all(c.done for c in shared.chunks)  # all done in this process
        starting.set_result(None)
        shared = _Shared.submit(analyser, _double, list(range(10)), 2)
        assert any(c.future is not None for c in shared.chunks)  # the worker has work
        assert [x for part in shared.results() for x in part] == [2 * i for i in range(10)]
    finally:
        analyser.close(wait=True)
