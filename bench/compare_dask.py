"""lowprec.dask.quantize on a LocalCluster of 1 and of 2 worker processes.

    python bench/compare_dask.py [--n 33554432] [--chunk 2097152] [--repeat 3]

x (n float32 values in chunks of --chunk, generated on the workers and
persisted there) is fake-quantized to e4m3 with stochastic rounding and
the result persisted (nothing travels back but the timing).  Each worker
is one process with one thread and LOWPREC_NUM_THREADS=1, so the ratio
measures the split over processes, not lowprec's own threads.  Prints the
best time of --repeat for each cluster and the speed-up (ideal 2.0 on a
machine with two free cores).
"""
import argparse
import os
import time

os.environ["LOWPREC_NUM_THREADS"] = "1"     # the workers inherit it

import dask.array as da  # noqa: E402
import distributed  # noqa: E402

import lowprec.dask as lpd  # noqa: E402


def run(workers, n, chunk, repeat):
    with distributed.LocalCluster(n_workers=workers, processes=True,
                                  threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        x = da.random.default_rng(0).standard_normal(
            n, chunks=chunk, dtype="float32").persist()
        distributed.wait(x)
        best = None
        for i in range(repeat + 1):               # the first one warms up
            t = time.perf_counter()
            # a new seed each time: new task keys, nothing reused
            q = lpd.quantize(x, "e4m3", rounding="stochastic",
                             seed=i + 1).persist()
            distributed.wait(q)
            dt = time.perf_counter() - t
            del q
            best = dt if best is None else min(best, dt)
        client.cancel(x)
        return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1 << 25)
    p.add_argument("--chunk", type=int, default=1 << 21)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    t1 = run(1, args.n, args.chunk, args.repeat)
    t2 = run(2, args.n, args.chunk, args.repeat)
    gb = args.n * 4 / 1e9
    print(f"lowprec.dask.quantize e4m3 stochastic, {args.n} float32 in "
          f"chunks of {args.chunk}")
    print(f"  1 worker : {t1 * 1e3:8.1f} ms  ({gb / t1:.2f} GB/s)")
    print(f"  2 workers: {t2 * 1e3:8.1f} ms  ({gb / t2:.2f} GB/s)")
    print(f"  speed-up : {t1 / t2:.2f}x")


if __name__ == "__main__":
    main()
