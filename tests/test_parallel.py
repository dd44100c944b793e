"""Tests for helpers.parallel: the shared worker pool and map_jobs."""
import os

import pytest

from helpers import parallel


def _square(x: int) -> int:
    return x * x


def _pid(_job) -> int:
    return os.getpid()


def _die(_job) -> None:
    os._exit(1)  # as a worker killed for memory


def _fail(x: int) -> int:
    if x == 2:
        raise RuntimeError("job 2 failed")
    return x


def test_map_jobs_in_workers_equals_in_process_and_keeps_order():
    jobs = [5, 1, 4, 2, 3]
    assert parallel.map_jobs(_square, jobs, workers=2) == [25, 1, 16, 4, 9]
    assert parallel.map_jobs(_square, jobs, workers=1) == [25, 1, 16, 4, 9]
    assert parallel.map_jobs(_square, [], workers=2) == []


def test_the_pool_is_reused_across_calls_and_errors_propagate():
    first = set(parallel.map_jobs(_pid, range(6), workers=2))
    second = set(parallel.map_jobs(_pid, range(6), workers=2))
    assert os.getpid() not in first and first | second <= set(parallel.pool(2)._processes)
    with pytest.raises(RuntimeError, match="job 2 failed"):
        parallel.map_jobs(_fail, [1, 2, 3], workers=2)
    assert parallel.map_jobs(_square, [3, 4], workers=2) == [9, 16]  # still usable
    parallel.close()
    with pytest.raises(ValueError, match="workers >= 1"):
        parallel.map_jobs(_square, [1], workers=0)
    with pytest.raises(ValueError, match="workers >= 2 for a pool"):
        parallel.pool(1)


def _cache_folder(_job) -> str | None:
    return os.environ.get("BOOK_CACHE")


def test_jobs_run_with_the_callers_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path / "first"))
    assert set(parallel.map_jobs(_cache_folder, range(4), workers=2)) == {str(tmp_path / "first")}
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path / "second"))  # the same pool, spawned before
    assert set(parallel.map_jobs(_cache_folder, range(4), workers=2)) == {str(tmp_path / "second")}
    parallel.close()


def test_a_dying_worker_raises_instead_of_hanging():
    with pytest.raises(RuntimeError, match="worker process of helpers.parallel died"):
        parallel.map_jobs(_die, [1, 2], workers=2)
    assert parallel.map_jobs(_square, [5, 6], workers=2) == [25, 36]  # a fresh pool
    parallel.close()


def _spin(seconds: float) -> None:
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_stage_cpu_counts_the_live_workers():
    from helpers.chapter import StageTimer

    timer = StageTimer()
    parallel.pool(2)
    with timer.stage("work"):
        parallel.map_jobs(_spin, [0.5, 0.5], workers=2)
    assert parallel.worker_cpu_seconds() >= 0.9
    assert timer.stages["work"][1] >= 0.9  # both workers' CPU, not the idle caller's
    parallel.close()
    assert parallel.worker_cpu_seconds() == 0.0
