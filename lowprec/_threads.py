"""The thread pool of the C and Numba kernels.

Kernels release the GIL and every element's bits depend only on its value
and flat index (or, for matrix products, on its row), so any split of the
work gives the same result.  Internal module: it imports nothing from the
public modules of lowprec.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["num_threads", "pool", "run_chunked", "split_rows"]

# Elements per thread below which splitting does not pay.
MIN_CHUNK = 1 << 16
# Multiply-adds below which a product runs on one thread.
MIN_PARALLEL_WORK = 1 << 21

_POOL = None


def num_threads() -> int:
    """Threads the kernels use: LOWPREC_NUM_THREADS, else every core."""
    env = os.environ.get("LOWPREC_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"LOWPREC_NUM_THREADS must be an integer, got "
                             f"{env!r}") from None
        return max(1, n)
    return max(1, len(os.sched_getaffinity(0))
               if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def pool() -> ThreadPoolExecutor:
    """The process-wide pool (created on first use)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                   thread_name_prefix="lowprec")
    return _POOL


_pool = pool     # the name lowprec.matmul imports


def run_chunked(kernel, n: int) -> int:
    """Calls kernel(start, stop) over [0, n) in per-thread chunks and ORs
    the returned error flags."""
    threads = min(num_threads(), max(1, n // MIN_CHUNK))
    if threads <= 1:
        return kernel(0, n)
    bounds = [n * t // threads for t in range(threads + 1)]
    futures = [pool().submit(kernel, bounds[t], bounds[t + 1])
               for t in range(threads)]
    err = 0
    for fut in futures:
        err |= fut.result()
    return err


def split_rows(kernel, m: int, work: int, align: int = 8) -> int:
    """Runs kernel(row0, row1) over [0, m) in per-thread row ranges (aligned
    to align rows, the micro-tile height) when work (multiply-adds) is worth
    it, and ORs the returned flags; a negative return means the kernel ran
    out of memory (MemoryError)."""
    threads = 1
    if work >= MIN_PARALLEL_WORK:
        threads = max(1, min(num_threads(), m // align))
    if threads <= 1:
        results = [kernel(0, m)]
    else:
        bounds = [m * t // threads // align * align for t in range(threads)]
        bounds.append(m)
        futures = [pool().submit(kernel, bounds[t], bounds[t + 1])
                   for t in range(threads)]
        results = [f.result() for f in futures]
    flags = 0
    for r in results:
        r = 0 if r is None else int(r)
        if r < 0:
            raise MemoryError("lowprec matmul kernel: out of memory")
        flags |= r
    return flags
