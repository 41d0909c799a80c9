"""Benchmark of app.engine.random against its raw-draw floor.

Run from the project root:  python tests/bench/bench_random.py [--reps N] [--side S]

For each stream it prints: uniform SxS float32 time, the time of ``raw_u32``
for the same number of draws (the floor) and their ratio; normal SxS float32
time, the number of raw 32-bit draws that normal consumed, the ``raw_u32``
time for that many draws, and their ratio.  Targets: uniform <= 1.3,
normal <= 1.6.  Times are the minimum over ``--reps`` runs.  Warm-up runs
create the generator states first, so state construction is not timed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import numpy as np  # noqa: E402

from app.engine import random as R  # noqa: E402


def _best_pair(fn, floor_fn, reps: int) -> tuple[float, float]:
    """Best wall times of ``fn`` and ``floor_fn``, measured interleaved.

    Interleaving keeps both minima comparable on a machine with varying load.
    """
    best, best_floor = float("inf"), float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        floor_fn()
        t2 = time.perf_counter()
        best = min(best, t1 - t0)
        best_floor = min(best_floor, t2 - t1)
    return best, best_floor


def bench_stream(stream: str, side: int, reps: int) -> dict:
    R.seed(0, stream=stream)
    n = side * side
    out = np.empty((side, side), np.float32)

    # warm-up: create all states, build tables
    R.uniform(shape=(side, side), out=out)
    R.normal(shape=(side, side), out=out)
    R.raw_u32(n)

    t_uni, t_uni_floor = _best_pair(lambda: R.uniform(0.0, 1.0, out=out),
                                    lambda: R.raw_u32(n), reps)

    # count the raw draws one normal op consumes
    c0 = R.raw_draws_consumed()
    R.normal(0.0, 1.0, out=out)
    draws = R.raw_draws_consumed() - c0
    t_norm, t_norm_floor = _best_pair(lambda: R.normal(0.0, 1.0, out=out),
                                      lambda: R.raw_u32(draws), reps)
    return {
        "uniform": (t_uni, t_uni_floor, n),
        "normal": (t_norm, t_norm_floor, draws),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    targets = {"uniform": 1.3, "normal": 1.6}
    print(f"numpy {np.__version__}; {args.side}x{args.side} float32; best of {args.reps}")
    for stream in R.STREAMS:
        res = bench_stream(stream, args.side, args.reps)
        print(f"\nstream {stream!r}")
        print(f"  {'op':<8} {'time ms':>9} {'raw draws':>11} {'floor ms':>9} {'ratio':>6} {'target':>6}")
        for op in ("uniform", "normal"):
            t, floor, draws = res[op]
            ratio = t / floor
            flag = "ok" if ratio <= targets[op] else "MISS"
            print(f"  {op:<8} {t * 1e3:9.1f} {draws:11d} {floor * 1e3:9.1f} {ratio:6.2f} "
                  f"{targets[op]:6.2f} {flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
