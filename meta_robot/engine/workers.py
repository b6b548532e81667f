"""Worker processes for the engine: one simulator (and GL context, and policy) per process.

A pool of W spawned processes (never forked: a GL context does not survive a fork), each built once by
an initializer and then fed one job at a time. A job that raises comes back as an error; a worker that
dies (a segfault in a native library, the OOM killer) loses only the job it had, which is reported,
and a fresh worker takes its place, so a long collection goes on. Each worker uses one thread for
BLAS and torch: W workers on W cores, not W x W threads fighting over them.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass
class JobResult:
    index: int  # position of the job in the submitted order
    job: Any
    value: Any = None
    error: str | None = None  # the worker's traceback, or why the worker died
    crashed: bool = False  # the worker process died while running this job

    @property
    def ok(self) -> bool:
        return self.error is None


def default_workers() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _worker_main(
    jobs: mp.Queue, results: mp.Queue, wid: int, initializer: Callable, init_arg: Any, handler: Callable
):
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    # The safety layer logs every held tick; a worker's episodes count holds in their metadata instead.
    logging.getLogger("meta_robot.safety").setLevel(logging.CRITICAL)
    parent = os.getppid()
    state = initializer(init_arg)
    while True:
        try:
            item = jobs.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the command was killed: nobody will read our results
                return
            continue
        if item is None:
            return
        index, job = item
        try:
            results.put((wid, index, handler(state, job), None))
        except Exception:
            results.put((wid, index, None, traceback.format_exc()))


class WorkerPool:
    """``handler(state, job)`` over jobs in ``workers`` processes, ``state = initializer(init_arg)``
    built once per process. Functions must be importable (module level)."""

    def __init__(
        self,
        workers: int,
        initializer: Callable[[Any], Any],
        init_arg: Any,
        handler: Callable[[Any, Any], Any],
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._ctx = mp.get_context("spawn")
        self._args = (initializer, init_arg, handler)
        self._results: mp.Queue = self._ctx.Queue()
        self._workers: dict[int, tuple[mp.Process, mp.Queue]] = {}
        self._next_id = 0
        for _ in range(workers):
            self._spawn()

    def _spawn(self) -> int:
        wid = self._next_id
        self._next_id += 1
        jobs: mp.Queue = self._ctx.Queue()
        process = self._ctx.Process(
            target=_worker_main,
            args=(jobs, self._results, wid, *self._args),
            daemon=True,
            name=f"engine-{wid}",
        )
        process.start()
        self._workers[wid] = (process, jobs)
        return wid

    def map(self, jobs: Iterable[Any]) -> Iterator[JobResult]:
        """Results as they finish (not in order; ``JobResult.index`` says which job)."""
        pending = list(enumerate(jobs))[::-1]
        busy: dict[int, tuple[int, Any]] = {}  # worker id -> (index, job)
        deaths_in_a_row = 0  # workers dying with nothing finished in between: a broken set-up, not bad luck
        while pending or busy:
            for wid in list(self._workers):
                if wid not in busy and pending:
                    index, job = pending.pop()
                    busy[wid] = (index, job)
                    self._workers[wid][1].put((index, job))
            try:
                wid, index, value, error = self._results.get(timeout=0.5)
            except queue.Empty:
                for wid in list(busy):
                    process = self._workers[wid][0]
                    if not process.is_alive():
                        index, job = busy.pop(wid)
                        del self._workers[wid]
                        why = f"worker died (exit code {process.exitcode})"
                        deaths_in_a_row += 1
                        if deaths_in_a_row > 2 * len(self._workers) + 2:
                            raise RuntimeError(
                                f"engine workers keep dying ({why}); see their output above"
                            ) from None
                        logger.error("engine worker %d: %s during job %d; starting another", wid, why, index)
                        self._spawn()
                        yield JobResult(index, job, error=why, crashed=True)
                continue
            _, job = busy.pop(wid)
            deaths_in_a_row = 0
            yield JobResult(index, job, value, error)

    def close(self) -> None:
        for process, jobs in self._workers.values():
            if process.is_alive():
                jobs.put(None)
        for process, _ in self._workers.values():
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        self._workers.clear()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
