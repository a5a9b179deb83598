"""Analysis of fetched mail (header parsing, text decoding, tone), here or in a worker.

A large sync spends half its time parsing headers, decoding text parts and scoring
tone, all of it pure work on bytes already fetched. With two cores that work goes to
one worker process while this one keeps reading the IMAP connection (imapclient's
parsing must run where the socket is) and writing the store: batch k's headers are
parsed while batch k+1's are fetched, its texts analysed while the next texts are
fetched, and each batch stored in order. The work goes in small chunks, and what the
worker has not started when a result is needed is done here, so both cores stay busy.
Small syncs (every daemon rescan, every test mailbox) stay in-process: starting a
worker costs more than it saves below a few thousand messages.

The worker gets the fetched header blocks (with flags, dates, sizes) and text parts,
and sends back features and scores; it opens no connection and no file and holds no
secret. If it fails in any way the batch is analysed here instead and the rest of the
sync stays in-process.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from .adapters.imap import HeaderAnswer, read_headers, split_answer
from .core.body import decode_text_part
from .core.features import (
    TEXT_LIMIT,
    Direction,
    MessageFeatures,
    RawMessage,
    TextPart,
    extract_features,
)
from .core.history import MessageTone
from .core.pickling import by_fields
from .errors import InboxFilterError
from .runctx import RunContext

log = logging.getLogger(__name__)
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
R = TypeVar("R")

TONE_CHARS = 4000
Batch = tuple[list[MessageFeatures], list[tuple[int, str]]]  # (features, skipped)
# Below this many new messages in a folder, analysis stays in-process. The variable is
# for tests, which need the worker on small mailboxes.
WORKER_MIN = int(os.environ.get("INBOX_FILTER_WORKER_MIN", "2000"))

# Footer wording of mass mailings (not a mention of "List-Unsubscribe" in a discussion).
_UNSUBSCRIBE_TEXT = re.compile(
    r"\b(?:to|click here to|you (?:can|may)|please|or) unsubscribe\b"
    r"|\bunsubscribe (?:here|now|at|from (?:this|our|these|future|the))\b"
    r"|to be removed from (?:this|our|the|future) (?:list|mailing|e-?mail)"
    r"|no longer wish to receive|\bopt[- ]out of (?:future|these|this|our)\b",
    re.IGNORECASE,
)
# Words every match of _UNSUBSCRIBE_TEXT contains. In ASCII text, IGNORECASE means
# lower case; elsewhere it also folds a few letters (ſ, K, ı) that str.lower keeps.
_UNSUBSCRIBE_WORDS = ("unsubscribe", "to be removed from", "no longer wish", "opt-out", "opt out")


def footer_opt_out(text: str) -> bool:
    """Whether the end of a text has the opt-out wording of a mass mailing. Most mail
    has none of its words: a substring test answers 20 times faster than the regex."""
    tail = text[-2000:]
    if tail.isascii():
        low = tail.lower()
        if not any(w in low for w in _UNSUBSCRIBE_WORDS):
            return False
    return _UNSUBSCRIBE_TEXT.search(tail) is not None


def message_tone(subtype: str, text: str, subject: str) -> MessageTone:
    """Tone of the sender's own words: quotes, forwards and signatures removed first.

    Only scores and short evidence phrases are kept; the text itself is dropped here.
    """
    from .core.tone import html_to_text, new_text, score_text  # only when there is text

    plain = html_to_text(text) if subtype == "html" else text
    # The sender's own words come first; past a few thousand characters is quoted
    # history, boilerplate or a newsletter body, which only slows scoring down.
    t = score_text(new_text(plain)[:TONE_CHARS], subject)
    return MessageTone(
        t.politeness,
        t.hostility,
        t.pressure,
        t.cold_outreach,
        {k: tuple(p[:80] for p in v[:5]) for k, v in t.evidence.items() if v},
    )


@by_fields
@dataclass(frozen=True, slots=True)
class TextResult:
    tone: MessageTone | None
    footer: bool  # an opt-out footer: a sign of a mailing


def was_cut(part: TextPart, fetched: int) -> bool:
    """Whether ``fetched`` bytes are only the start of the part. A part chosen from the
    header alone has no known size (0): a full TEXT_LIMIT is then taken as cut."""
    return part.size > fetched or (part.size == 0 and fetched >= TEXT_LIMIT)


def analyse_text(
    part: TextPart, data: bytes, subject: str, score: bool, ctx: RunContext
) -> TextResult:
    """Decode a text part and, when ``score``, its tone (raises on a bad message)."""
    with ctx.stage("parse"):
        subtype, text = decode_text_part(part, data, truncated=was_cut(part, len(data)))
    if not score:
        return TextResult(None, False)
    with ctx.stage("tone"):
        tone = message_tone(subtype, text, subject)
    # Mailings without list headers still carry an opt-out footer: a bulk sign.
    return TextResult(tone, footer_opt_out(text))


def with_text(features: MessageFeatures, result: TextResult) -> MessageFeatures:
    if result.tone is None:
        return features
    features = replace(features, tone=result.tone)
    if result.footer:
        features = replace(
            features, esp_headers=(*features.esp_headers, "unsubscribe text in the mail")
        )
    return features


def skip_reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, InboxFilterError) else repr(exc)


class Skip(InboxFilterError):
    """A message the worker could not analyse; the message is the reason."""


def headers_of(raw: RawMessage, known: MessageFeatures | None, ctx: RunContext) -> MessageFeatures:
    """The header features, parsed here unless already known (raises on bad headers)."""
    if known is not None:
        return known
    with ctx.stage("parse"):
        return extract_features(raw)


def analyse_message(
    raw: RawMessage, features: MessageFeatures, score: bool, ctx: RunContext
) -> MessageFeatures:
    """Header features plus what the text part adds (raises on a bad message)."""
    if raw.text_part is None or raw.text is None:
        return features
    return with_text(features, analyse_text(raw.text_part, raw.text, features.subject, score, ctx))


def analyse_each(
    raws: Iterable[RawMessage], where: str, one: Callable[[RawMessage], MessageFeatures]
) -> Batch:
    """``one`` for every message; a message it raises on is logged and skipped, never
    the batch."""
    features: list[MessageFeatures] = []
    skipped: list[tuple[int, str]] = []
    for raw in raws:
        try:
            features.append(one(raw))
        except Exception as exc:  # noqa: BLE001 - one bad message never stops a scan
            reason = skip_reason(exc)
            log.warning("%s uid %s: message skipped: %s", where, raw.uid, reason[:300])
            skipped.append((raw.uid, reason))
    return features, skipped


# ----------------------------------------------------------------------------- batches


@dataclass(frozen=True, slots=True)
class TextJob:
    uid: int
    part: TextPart
    data: bytes
    subject: str
    score: bool


def _run_jobs(jobs: Sequence[TextJob]) -> tuple[dict[int, TextResult | str], dict[str, float]]:
    """In the worker: each job's result, or the reason it failed."""
    ctx = RunContext()
    out: dict[int, TextResult | str] = {}
    for job in jobs:
        try:
            out[job.uid] = analyse_text(job.part, job.data, job.subject, job.score, ctx)
        except Exception as exc:  # noqa: BLE001 - one bad message never stops a scan
            out[job.uid] = skip_reason(exc)
    return out, ctx.stages


def header_features(raws: Sequence[RawMessage]) -> dict[int, MessageFeatures]:
    """Header features by UID; a message whose headers cannot be parsed is left out
    (the analysis step then reports it as skipped, with the reason)."""
    known: dict[int, MessageFeatures] = {}
    for raw in raws:
        try:
            known[raw.uid] = extract_features(raw)
        except Exception:  # noqa: BLE001, S112 - reported when the batch is analysed
            continue
    return known


def _add(into: dict[str, float], took: dict[str, float]) -> None:
    """Add a job's seconds per stage to a running total."""
    for name, seconds in took.items():
        into[name] = into.get(name, 0.0) + seconds


Headers = tuple[list[RawMessage], dict[int, MessageFeatures]]  # (messages, header features)
HeaderJob = tuple[str, Direction, HeaderAnswer]  # folder, direction, the FETCH answer


def _read_headers(jobs: Sequence[HeaderJob]) -> tuple[Headers, dict[str, float]]:
    """A header FETCH's answer, parsed (imapclient), and its messages' header features."""
    t0 = time.perf_counter()
    raws = [
        RawMessage(folder, h.uid, direction, h.flags, h.internal_date, h.size, h.header)
        for folder, direction, answer in jobs
        for h in read_headers(answer)
    ]
    t1 = time.perf_counter()
    known = header_features(raws)
    return (raws, known), {"fetch": t1 - t0, "parse": time.perf_counter() - t1}


class Pending(Protocol[T_co]):
    """A step's result: ready, or still with the worker."""

    def result(self) -> T_co: ...


@dataclass(slots=True)
class _Ready(Generic[T]):
    value: T

    def result(self) -> T:
        return self.value


# Work goes to the worker in small chunks, a few at a time (IN_FLIGHT); the rest wait
# in this process's queue. When this process needs a result the worker has not sent
# yet, it does queued chunks itself (the newest, which the worker would reach last)
# instead of waiting: neither process idles while the other has work queued. (Taking
# work back by cancelling futures would be simpler, but on Python 3.11 a pool that
# breaks while holding a cancelled future stops answering.)
HEADER_CHUNK = 100  # messages: ~12 ms of reading and header parsing
TEXT_CHUNK = 40  # texts: ~12 ms of decoding and tone
IN_FLIGHT = 6


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass(slots=True, eq=False)
class _Chunk(Generic[T, R]):
    run: Callable[[Sequence[T]], tuple[R, dict[str, float]]]
    items: Sequence[T]
    future: concurrent.futures.Future[tuple[R, dict[str, float]]] | None = None
    done: bool = False  # done in this process: result holds its answer
    result: R | None = None


@dataclass(slots=True)
class _Shared(Generic[T, R]):
    """One step's chunks; ``run`` does a chunk in either process and returns its result
    with the seconds each stage took."""

    analyser: Analyser
    chunks: list[_Chunk[T, R]]

    @classmethod
    def submit(
        cls,
        analyser: Analyser,
        run: Callable[[Sequence[T]], tuple[R, dict[str, float]]],
        items: Sequence[T],
        size: int,
    ) -> _Shared[T, R]:
        shared = cls(analyser, [_Chunk(run, c) for c in _chunks(items, size)])
        analyser.queue.extend(shared.chunks)
        analyser.pump()
        return shared

    def results(self) -> list[R]:
        analyser = self.analyser
        out: list[R] = []
        for chunk in self.chunks:
            if chunk.future is None and not chunk.done:  # never given (or the worker broke)
                analyser.unqueue(chunk)
                analyser.here(chunk)
            if chunk.done:
                out.append(chunk.result)  # type: ignore[arg-type]
                continue
            assert chunk.future is not None
            # Rather than wait, do the work the worker would reach last.
            while not chunk.future.done() and analyser.queue:
                analyser.here(analyser.queue.pop())
                analyser.pump()
            out.append(self._collect(chunk))
        return out

    def as_done(self) -> Iterator[tuple[int, R]]:
        """Each chunk's index and result as soon as it is there, in any order: nothing
        is held for an earlier chunk (the worker's results, or this process's own work
        on the newest chunks meanwhile)."""
        analyser = self.analyser
        left = dict(enumerate(self.chunks))
        try:
            while left:
                for i, chunk in list(left.items()):
                    if chunk.done or (chunk.future is not None and chunk.future.done()):
                        del left[i]
                        result = chunk.result if chunk.done else self._collect(chunk)
                        # Let go of it here (the future holds it too): the caller keeps
                        # what it wants of it.
                        chunk.result = chunk.future = None
                        chunk.items = ()
                        yield i, result  # type: ignore[misc]
                queued = [c for c in left.values() if c.future is None and not c.done]
                if queued:  # the newest, which the worker would reach last
                    analyser.unqueue(queued[-1])
                    analyser.here(queued[-1])
                    analyser.pump()
                elif left:
                    with analyser.ctx.stage("wait"):
                        concurrent.futures.wait(
                            [c.future for c in left.values() if c.future is not None],
                            return_when=concurrent.futures.FIRST_COMPLETED,
                        )
        finally:  # a caller that stops early leaves nothing queued behind
            for chunk in left.values():
                if chunk.future is None and not chunk.done:
                    analyser.unqueue(chunk)

    def _collect(self, chunk: _Chunk[T, R]) -> R:
        """A given chunk's result from the worker (waiting for it), or done here when
        the worker failed."""
        analyser = self.analyser
        assert chunk.future is not None
        try:
            with analyser.ctx.stage("wait"):
                result, took = chunk.future.result()
        except InboxFilterError:
            raise  # the job's own answer (an unreadable FETCH), not a worker failure
        except Exception as exc:  # noqa: BLE001 - the worker died: do it here instead
            analyser.broken(exc)
            analyser.here(chunk)
            return chunk.result  # type: ignore[return-value]
        _add(analyser.worker, took)
        analyser.pump()
        return result


@dataclass(slots=True)
class _HeadersRemote:
    shared: _Shared[HeaderJob, Headers]

    def result(self) -> Headers:
        raws: dict[int, RawMessage] = {}
        known: dict[int, MessageFeatures] = {}
        for piece_raws, piece_known in self.shared.results():
            for raw in piece_raws:
                had = raws.get(raw.uid)
                if had is not None and (had.header or not raw.header):
                    continue  # an unsolicited FETCH of flags: the header answer wins
                raws[raw.uid] = raw
                known.pop(raw.uid, None)
                if raw.uid in piece_known:
                    known[raw.uid] = piece_known[raw.uid]
        return list(raws.values()), known


def _peak_rss() -> float:
    """In the worker: its peak resident memory, MB (reported beside the scan's own)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return 0.0
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _warm() -> bool:
    """Whether the tone model is loaded in this process."""
    politeness = sys.modules.get("inbox_filter.core.politeness")
    return politeness is not None and politeness.load_model.cache_info().currsize > 0


def _warm_up() -> None:
    """Import and load what jobs need while the first batch is being fetched (the
    politeness model's first read is ~27 ms, as much as the imports)."""
    from .core import politeness, tone  # noqa: F401

    politeness.load_model()


def _worker_init(parent: int) -> None:
    """In the worker: exit as soon as the scan's process is gone (a SIGKILL gives it no
    chance to stop us, and our own end of the job queue would keep us waiting)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch, name="inbox-filter-parent-watch", daemon=True).start()


@dataclass(slots=True)
class _Remote:
    analyser: Analyser
    raws: list[RawMessage]
    known: dict[int, MessageFeatures]
    where: str
    shared: _Shared[TextJob, dict[int, TextResult | str]]

    def result(self) -> Batch:
        texts: dict[int, TextResult | str] = {}
        for part in self.shared.results():
            texts.update(part)
        ctx = self.analyser.ctx

        def one(raw: RawMessage) -> MessageFeatures:
            f = headers_of(raw, self.known.get(raw.uid), ctx)
            got = texts.get(raw.uid)
            if isinstance(got, str):
                raise Skip(got)
            return with_text(f, got) if got is not None else f

        return analyse_each(self.raws, self.where, one)


@dataclass(slots=True)
class Analyser:
    """Analyses fetched batches: in-process, or in one worker once ``start`` is called."""

    ctx: RunContext
    pool: concurrent.futures.ProcessPoolExecutor | None = None
    failed: bool = False
    worker: dict[str, float] = field(default_factory=dict)  # the worker's time
    queue: deque[_Chunk[Any, Any]] = field(default_factory=deque)  # not yet given
    in_flight: list[_Chunk[Any, Any]] = field(default_factory=list)
    # The worker's start (a new interpreter, imports, the tone model: ~0.3 s): until it
    # is done, chunks stay queued for this process rather than wait in the pool.
    ready: concurrent.futures.Future[None] | None = None

    def pump(self) -> None:
        """Give the worker queued chunks until IN_FLIGHT are unfinished."""
        if self.pool is None or (self.ready is not None and not self.ready.done()):
            return
        self.in_flight = [c for c in self.in_flight if c.future is not None and not c.future.done()]
        while len(self.in_flight) < IN_FLIGHT and self.queue:
            chunk = self.queue.popleft()
            try:
                chunk.future = self.pool.submit(chunk.run, chunk.items)
            except Exception as exc:  # noqa: BLE001 - broken pool: its owner does it here
                self.queue.appendleft(chunk)
                self.broken(exc)
                return
            self.in_flight.append(chunk)

    def here(self, chunk: _Chunk[Any, Any]) -> None:
        """Do a chunk in this process."""
        chunk.result, took = chunk.run(chunk.items)
        chunk.done = True
        _add(self.ctx.stages, took)

    def unqueue(self, chunk: _Chunk[Any, Any]) -> None:
        with contextlib.suppress(ValueError):
            self.queue.remove(chunk)

    def start(self, messages: int) -> None:
        """Use a worker for a folder with this many new messages, if it is worth it."""
        if self.pool is not None or self.failed or messages < WORKER_MIN:
            return
        if (os.cpu_count() or 1) < 2:
            return
        try:
            # spawn, not fork: the daemon runs scans in threads, and a forked child of a
            # threaded process can inherit a held lock.
            self.pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
            self.ready = self.pool.submit(_warm_up)
        except Exception as exc:  # noqa: BLE001 - no worker: everything stays here
            self.broken(exc)

    def warm_up(self) -> threading.Thread | None:
        """Import and load what scoring texts here needs, in a thread, ahead of the first
        text: it runs while this process waits for the server. None when done already
        (a daemon's later scans) or when the worker scores."""
        if self.pool is not None or _warm():
            return None
        thread = threading.Thread(target=_warm_up, name="inbox-filter-warm-up", daemon=True)
        thread.start()
        return thread

    def broken(self, exc: BaseException) -> None:
        if not self.failed:
            log.warning("text analysis worker unavailable (%r); continuing in-process", exc)
        self.failed = True
        self.close()

    def close(self, wait: bool = False) -> None:
        """Stop the worker: waiting for it after a finished sync (it is idle, and its
        CPU time is then counted as this process's children's), not after a failure."""
        if self.pool is not None:
            if wait:
                with contextlib.suppress(Exception):
                    self.pool.submit(_peak_rss).add_done_callback(self._note_rss)
            self.pool.shutdown(wait=wait, cancel_futures=not wait)
            self.pool = None

    def _note_rss(self, future: concurrent.futures.Future[float]) -> None:
        with contextlib.suppress(Exception):
            self.worker["peak_rss_mb"] = future.result()

    def share(
        self, run: Callable[[Sequence[T]], tuple[R, dict[str, float]]], items: Sequence[T]
    ) -> Iterator[tuple[int, R]]:
        """``run`` over each item, shared with the worker when there is one (else all
        here): each item's index and result as soon as it is there, in any order."""
        if self.pool is None:
            for i, item in enumerate(items):
                result, took = run([item])
                _add(self.ctx.stages, took)
                yield i, result
            return
        yield from _Shared.submit(self, run, items, 1).as_done()

    def read_headers(
        self, folder: str, direction: Direction, answer: HeaderAnswer
    ) -> Pending[Headers]:
        """Parse a header FETCH's answer and its headers: in the worker, in pieces of
        HEADER_CHUNK messages, when there is one."""
        if self.pool is not None:
            jobs = [(folder, direction, a) for a in split_answer(answer, HEADER_CHUNK)]
            return _HeadersRemote(_Shared.submit(self, _read_headers, jobs, 1))
        headers, took = _read_headers([(folder, direction, answer)])
        _add(self.ctx.stages, took)
        return _Ready(headers)

    def submit(
        self,
        raws: list[RawMessage],
        known: dict[int, MessageFeatures],
        scores: dict[int, bool],
        where: str,
    ) -> Pending[Batch]:
        """``known``: header features already parsed; ``scores``: uid -> score tone."""
        if self.pool is None:
            return _Ready(self.local(raws, known, scores, where))
        jobs = [
            TextJob(r.uid, r.text_part, r.text, known[r.uid].subject, scores.get(r.uid, False))
            for r in raws
            if r.text_part is not None and r.text is not None and r.uid in known
        ]
        return _Remote(self, raws, known, where, _Shared.submit(self, _run_jobs, jobs, TEXT_CHUNK))

    def local(
        self,
        raws: list[RawMessage],
        known: dict[int, MessageFeatures],
        scores: dict[int, bool],
        where: str,
    ) -> Batch:
        def one(raw: RawMessage) -> MessageFeatures:
            f = headers_of(raw, known.get(raw.uid), self.ctx)
            return analyse_message(raw, f, scores.get(raw.uid, False), self.ctx)

        return analyse_each(raws, where, one)
