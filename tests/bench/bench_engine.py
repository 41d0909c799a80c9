"""Engine benchmarks: our time next to a hand-written NumPy floor, measured in one run.

    python tests/bench/bench_engine.py            # everything
    python tests/bench/bench_engine.py --quick    # fewer repetitions

Each figure is printed as ``ours  floor  ratio  target``. The two sides are timed interleaved
(ours, floor, ours, floor, ...) and the median of the repetitions is compared, so a noisy machine
moves both. Nothing here is a test: CI never fails on a time.

Figures:
1. a training step (forward, backward, SGD step through the Gluon API) of the chapter's net
   (5→4 relu→2, batch 3) against a hand-written NumPy forward/backward/update — target ≤ 2.0;
2. the same for 1024→4096 relu→4096 relu→10, batch 256, float32 — target ≤ 1.10;
3. Uniform and Normal initialization of a 4096×4096 weight against the raw 32-bit draws the same
   stream consumes for it — targets ≤ 1.3 and ≤ 1.6, for both streams (mxnet, pcg64);
4. peak memory of the big step against the floor's (tracemalloc, separate processes) — ≤ 1.2.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.engine import autograd, gluon, nd  # noqa: E402
from app.engine import random as rng  # noqa: E402
from app.engine.gluon import nn  # noqa: E402


# --------------------------------------------------------------------------- the two sides
def build_ours(sizes, batch, seed=1):
    rng.seed(seed)
    net = nn.Sequential()
    with net.name_scope():
        for units in sizes[1:-1]:
            net.add(nn.Dense(units, activation="relu", in_units=0))
        net.add(nn.Dense(sizes[-1]))
    net.initialize()
    x = nd.random.uniform(shape=(batch, sizes[0]))
    net(x)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1e-5})

    def step():
        with autograd.record():
            y = net(x)
        y.backward()
        trainer.step(batch)
    return step, net, x


def build_floor(net, x):
    """A plain NumPy MLP with the same weights: forward, backward with a ones head, SGD."""
    layers = [(blk.weight.data().asnumpy(), blk.bias.data().asnumpy()) for blk in net]
    xs = x.asnumpy()
    lr = 1e-5 / xs.shape[0]
    n = len(layers)

    def step():
        acts = [xs]
        pre = []
        a = xs
        for i, (w, b) in enumerate(layers):
            h = a @ w.T
            h += b
            pre.append(h)
            a = np.maximum(h, 0) if i < n - 1 else h
            acts.append(a)
        g = np.ones_like(a)
        for i in range(n - 1, -1, -1):
            w, b = layers[i]
            if i < n - 1:
                g = g * (pre[i] > 0)
            dw = g.T @ acts[i]
            db = g.sum(axis=0)
            if i > 0:
                g = g @ w
            w -= lr * dw
            b -= lr * db
    return step


def interleaved(fa, fb, reps, inner):
    ta, tb = [], []
    for f in (fa, fb):
        f()
    for _ in range(reps):
        for f, out in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            out.append((time.perf_counter() - t0) / inner)
    return statistics.median(ta), statistics.median(tb)


def fmt_time(t):
    return f"{t * 1e6:9.1f} µs" if t < 1e-3 else f"{t * 1e3:9.2f} ms"


def row(label, ours, floor, target, unit=fmt_time):
    ratio = ours / floor
    mark = "ok" if ratio <= target else "OVER"
    print(f"{label:<44} {unit(ours)}  {unit(floor)}  {ratio:6.3f}  ≤ {target:<4} {mark}")


def header():
    print(f"{'figure':<44} {'ours':>12}  {'floor':>12}  {'ratio':>6}  target")


# --------------------------------------------------------------------------- figures
def bench_small(quick):
    step, net, x = build_ours([5, 4, 2], 3)
    floor = build_floor(net, x)
    ours, fl = interleaved(step, floor, 15 if quick else 41, 200)
    row("step, chapter net 5→4 relu→2, batch 3", ours, fl, 2.0)


def bench_big(quick):
    step, net, x = build_ours([1024, 4096, 4096, 10], 256)
    floor = build_floor(net, x)
    ours, fl = interleaved(step, floor, 5 if quick else 11, 1)
    row("step, 1024→4096→4096→10, batch 256, f32", ours, fl, 1.10)


def bench_init(quick):
    shape = (4096, 4096)
    n = shape[0] * shape[1]
    reps = 3 if quick else 7
    for stream in ("mxnet", "pcg64"):
        rng.seed(0, stream=stream)
        arr = nd.zeros(shape)
        from app.engine import init

        uni = init.Uniform(0.07)
        nor = init.Normal(0.01)
        desc = init.InitDesc("w", {"__init__": ""})

        def do_uniform():
            uni._init_weight(desc, arr)

        def floor_uniform():
            rng.raw_u32(n)
        ours, fl = interleaved(do_uniform, floor_uniform, reps, 1)
        row(f"Uniform init 4096², {stream} stream", ours, fl, 1.3)

        state = rng.getstate()
        consumed = _raw_consumed_by_normal(shape)
        rng.setstate(state)

        def do_normal():
            nor._init_weight(desc, arr)

        def floor_normal():
            rng.raw_u32(consumed)
        ours, fl = interleaved(do_normal, floor_normal, reps, 1)
        row(f"Normal init 4096², {stream} stream", ours, fl, 1.6)
    rng.seed(0, stream="mxnet")


def _raw_consumed_by_normal(shape):
    """How many raw 32-bit draws one Normal fill of ``shape`` consumes (measured)."""
    counter = getattr(rng, "raw_draws_consumed", None)
    if counter is not None:
        before = counter()
        rng.normal(0.0, 1.0, shape=shape)
        return counter() - before
    # Marsaglia polar accepts a pair with probability π/4: 2 draws per try.
    return int(round(shape[0] * shape[1] * 2 * 4 / np.pi))


# --------------------------------------------------------------------------- memory
def _mem_child(which):
    step, net, x = build_ours([1024, 4096, 4096, 10], 256)
    if which == "floor":
        floor = build_floor(net, x)
        del step, net
        gc.collect()
        fn = floor
    else:
        fn = step
    fn()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # Persistent state counted on both sides: parameters (and, for us, gradient buffers, which
    # the floor re-allocates every step and so shows in its peak).
    if which == "floor":
        persistent = 0
    else:
        persistent = sum(p.grad().size * 4 for p in net.collect_params().values()
                         if p.grad_req != "null")
    print(peak - base + persistent)


def bench_memory():
    out = {}
    for which in ("ours", "floor"):
        res = subprocess.run([sys.executable, __file__, "--mem-child", which],
                             capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        out[which] = int(res.stdout.strip().splitlines()[-1])
    row("peak step memory, big net (incl. grads)", out["ours"], out["floor"], 1.2,
        unit=lambda b: f"{b / 2**20:9.1f} MiB")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["small", "big", "init", "memory"])
    ap.add_argument("--mem-child", choices=["ours", "floor"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mem_child:
        _mem_child(args.mem_child)
        return 0
    print(f"numpy {np.__version__}, {os.cpu_count()} cores, python {sys.version.split()[0]}")
    header()
    todo = [args.only] if args.only else ["small", "big", "init", "memory"]
    for name in todo:
        {"small": lambda: bench_small(args.quick), "big": lambda: bench_big(args.quick),
         "init": lambda: bench_init(args.quick), "memory": bench_memory}[name]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
