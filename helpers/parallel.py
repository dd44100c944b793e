"""Worker processes for a chapter's independent jobs: spawned once, reused by every call.

A chapter that trains several models or runs many simulator episodes spreads them over
``workers`` processes with :func:`map_jobs`. The pool is created on first use and kept until
:func:`close` (or interpreter exit), so the workers' imports and anything they cache in module
globals (a simulator per task, say) are paid once per chapter run, not once per call. Each
worker runs one torch thread: on a 2-core machine two one-thread workers beat one two-thread
process for small models, and they do not oversubscribe the cores.

``workers=1`` (or a single job) runs in the calling process, in order, with the same results:
callers must make each job depend only on its arguments (seeds included), never on which
process or in which order it runs.
"""
from __future__ import annotations

import atexit
import ctypes
import gc
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_POOL: ProcessPoolExecutor | None = None
_POOL_SIZE = 0


def _init_worker() -> None:
    import signal

    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us; no tracebacks on Ctrl-C


def _call(task: tuple) -> Any:
    """Run one job with the caller's cache folder: a pool spawned earlier, under another
    ``BOOK_CACHE``, must still read and write where the caller does."""
    fn, job, cache_folder = task
    if cache_folder is None:
        os.environ.pop("BOOK_CACHE", None)
    else:
        os.environ["BOOK_CACHE"] = cache_folder
    try:
        return fn(job)
    finally:  # hand freed memory back to the system: a long-lived worker must not keep its peak
        gc.collect()
        _malloc_trim()


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def pool(workers: int) -> ProcessPoolExecutor:
    """The shared pool of ``workers`` spawned processes (created, or resized, on demand).

    Raises:
        ValueError: ``workers`` < 2 (one worker means "run in this process": call the job).
    """
    global _POOL, _POOL_SIZE
    if workers < 2:
        raise ValueError(f"Expected workers >= 2 for a pool, but got {workers}; with one worker "
                         f"run the jobs in this process (map_jobs does).")
    if _POOL is not None and _POOL_SIZE != workers:
        close()
    if _POOL is None:
        _POOL = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=_init_worker)
        _POOL_SIZE = workers
    return _POOL


def close() -> None:
    """Stop the shared pool's workers (a later :func:`pool` call starts fresh ones)."""
    global _POOL, _POOL_SIZE
    if _POOL is not None:
        _POOL.shutdown(wait=True, cancel_futures=True)
    _POOL, _POOL_SIZE = None, 0


atexit.register(close)


def worker_cpu_seconds() -> float:
    """CPU seconds used so far by the shared pool's live workers (read from ``/proc``; 0 where
    there is none). Workers that were joined count in the caller's child-process times instead.
    """
    if _POOL is None:
        return 0.0
    total = 0.0
    for pid in list(getattr(_POOL, "_processes", None) or ()):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):  # exited meanwhile, or not Linux
            pass
    return total


def map_jobs(fn: Callable[[Any], T], jobs: Iterable[Any], workers: int = 1, *,
             desc: str | None = None, progress: bool = True) -> list[T]:
    """``[fn(job) for job in jobs]``, spread over ``workers`` processes of the shared pool.

    Jobs are handed out one at a time in the given order (put the longest first to balance
    the workers); results come back in that order. ``fn`` must be a module-level function and
    the jobs picklable. Each job runs with this process's ``BOOK_CACHE``, whatever it was when
    the pool started. A job that raises re-raises its exception here; a worker that dies
    (killed for memory, say) raises a RuntimeError instead of hanging.

    Args:
        fn: the job function, importable by name (spawned workers import its module).
        jobs: its arguments, one per call.
        workers: processes to use; 1 runs in this process.
        desc: progress-bar label (no bar when None or ``progress`` is False).
        progress: show a tqdm bar over finished jobs.

    Raises:
        ValueError: ``workers`` < 1.
    """
    if workers < 1:
        raise ValueError(f"Expected workers >= 1, but got {workers}.")
    jobs = list(jobs)
    bar = dict(total=len(jobs), desc=desc, disable=not progress or desc is None)
    if workers == 1 or len(jobs) <= 1:
        return [fn(job) for job in tqdm(jobs, **bar)]
    tasks = [(fn, job, os.environ.get("BOOK_CACHE")) for job in jobs]
    try:
        return list(tqdm(pool(workers).map(_call, tasks), **bar))
    except BrokenProcessPool as err:  # a worker died (e.g. killed for memory): say so, never hang
        close()
        raise RuntimeError(f"a worker process of helpers.parallel died while running "
                           f"{getattr(fn, '__name__', fn)} (killed for memory? see dmesg); "
                           f"rerun with fewer workers or more free memory") from err
