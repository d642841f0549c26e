"""The server's jobs: each runs on a copy of the model no other thread runs, a page's newer request supersedes its
older one of the same kind, and the test-set evaluation runs in the background with its progress.

Why copies: a layer keeps what its forward saw on itself (the cache for backward, the output's shape, a
convolution's columns) and a tool may hang hooks on it, so two passes through one model object at once corrupt
each other, even under ``no_grad``, which clears the cache a concurrent backward needs.  With a copy per running
job, a prediction never waits for a model, only for a thread (``app.Lane``)."""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import re
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor

PAGE_HEADER, SEQUENCE_HEADER = "Juanji-Page", "Juanji-Sequence"
PAGE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
SEQUENCE = re.compile(r"[0-9]{1,15}")
# Test images per forward pass of an evaluation, and occluded copies per pass of an occlusion: between two, a job
# counts its progress and may stop (a ResNet-20 on one core: ~0.4 s and ~0.2 s; no slower than larger batches).
EVALUATION_BATCH, OCCLUSION_BATCH = 100, 32


class Superseded(RuntimeError):
    """The job was stopped: the page that asked for it sent a newer request of the same route, or the server
    stops (HTTP 409 with ``"superseded": true``, which the page ignores)."""


class Job:
    """One request's work: ``check()`` between chunks raises ``Superseded`` once ``cancel`` was called, and
    ``done`` of ``total`` counts the inputs it has run through a watched model (``watching``)."""

    def __init__(self):
        self.done, self.total = 0, None
        self._reason: str | None = None

    def cancel(self, reason: str) -> None:
        self._reason = reason

    def check(self) -> None:
        if self._reason is not None:
            raise Superseded(self._reason)

    @contextlib.contextmanager
    def watching(self, model):
        """While in the block, every call of ``model`` (a batch: of occluded copies, of test images) first checks
        the job and then counts its inputs: hooks on a model that only this job runs (``Models.borrow``)."""
        before = model.register_forward_pre_hook(lambda module, inputs: self.check())
        after = model.register_forward_hook(lambda module, inputs, output: self._count(len(inputs[0])))
        with before, after:
            yield model

    def _count(self, inputs: int) -> None:
        self.done += inputs


class Models:
    """Copies of a trained model (``TrainedModel``) for jobs running at once: ``borrow()`` lends one no other
    thread runs, made from the model as loaded (which never runs itself) when every copy is out; so there are
    never more copies than threads that ever ran the model at once (the server's lanes bound them)."""

    def __init__(self, trained):
        self.trained = trained
        self._idle: list = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def borrow(self, job: Job | None = None):
        """A ``TrainedModel`` whose model is this thread's until the block ends; with ``job``, checked first and
        watched meanwhile (``Job.watching``: a job superseded while it waited for a thread does not start)."""
        if job is not None:
            job.check()
        with self._lock:
            lent = self._idle.pop() if self._idle else None
        if lent is None:
            lent = dataclasses.replace(self.trained, model=copy.deepcopy(self.trained.model))
        try:
            if job is None:
                yield lent
            else:
                with job.watching(lent.model):
                    yield lent
        finally:
            with self._lock:
                self._idle.append(lent)


def page_of(headers) -> tuple[str, int] | None:
    """(page id, sequence number) a request of the page carries in its ``Juanji-Page`` and ``Juanji-Sequence``
    headers, or None for a request that sends neither (a program: never superseded); ValueError for bad ones."""
    page, sequence = headers.get(PAGE_HEADER), headers.get(SEQUENCE_HEADER)
    if page is None and sequence is None:
        return None
    if page is None or not PAGE_ID.fullmatch(page):
        raise ValueError(f"{PAGE_HEADER} must be 1 to 64 letters, digits or '-', got {page!r}")
    if sequence is None or not SEQUENCE.fullmatch(sequence):
        raise ValueError(f"{SEQUENCE_HEADER} must be a whole number of at most 15 digits, got {sequence!r}")
    return page, int(sequence)


class Jobs:
    """The jobs of the pages (by page id and kind: one route) running now, and the test-set evaluations (by model
    served: a run's checkpoint loaded again is evaluated again) on ``evaluators`` threads of their own.
    ``begin``, ``end`` and ``evaluation`` are called on the event loop only; jobs run in worker threads."""

    def __init__(self, evaluators: int):
        self._pages: dict[tuple[str, str], tuple[int, Job]] = {}
        self._evaluator = ThreadPoolExecutor(evaluators, thread_name_prefix="juanji-evaluation")
        self._evaluations = weakref.WeakKeyDictionary()     # a run's model → (its Job, its Future)

    def begin(self, kind: str, page: tuple[str, int] | None) -> Job:
        """A new job of route ``kind``: for a page's request it cancels the page's running job of that kind, or is
        ``Superseded`` at once when that one is newer (the answers crossed on their way)."""
        job = Job()
        if page is None:
            return job
        key, sequence = (page[0], kind), page[1]
        running = self._pages.get(key)
        if running is not None:
            if running[0] > sequence:
                raise Superseded(f"superseded: this page asked a newer {kind} (request {running[0]}) before "
                                 f"request {sequence}")
            running[1].cancel(f"superseded by the page's newer {kind} request {sequence}")
        self._pages[key] = sequence, job
        return job

    def end(self, kind: str, page: tuple[str, int] | None, job: Job) -> None:
        if page is not None and self._pages.get((page[0], kind), (None, None))[1] is job:
            del self._pages[(page[0], kind)]

    def evaluation(self, run, evaluate) -> tuple[Job, Future]:
        """The test-set evaluation of ``run`` running in the background (``evaluate(job)`` on the evaluation
        thread), started now unless one is running or has answered; one that failed is tried again."""
        found = self._evaluations.get(run)
        if found is None or (found[1].done() and (found[1].cancelled() or found[1].exception() is not None)):
            job = Job()
            found = self._evaluations[run] = job, self._evaluator.submit(evaluate, job)
        return found

    def stop(self) -> None:
        """The server stops: every job ends at its next check, and no evaluation starts."""
        for _, job in self._pages.values():
            job.cancel("superseded: the server stops")
        for job, _ in self._evaluations.values():
            job.cancel("superseded: the server stops")
        self._evaluator.shutdown(wait=False, cancel_futures=True)
