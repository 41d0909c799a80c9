"""Training-run benchmarks: a run in the window's background thread against the engine alone.

    python tests/bench/bench_training.py            # 20 steps per run, 3 interleaved rounds
    python tests/bench/bench_training.py --quick    # 4 steps per run, 2 rounds

Nothing here is a test: CI never fails on a time. Printed as ``ours  floor  ratio  target``.

a. Train N steps of 1024→4096 relu→4096 relu→10, batch 256, float32, softmax cross-entropy with
   labels, SGD — from the window (MainWindow shown offscreen, the run on its worker thread, the
   GUI thread running its event loop: progress ticks, loss curve, status bar) against the same N
   steps written directly on ``app.engine`` (``record``, forward, loss, ``backward``,
   ``trainer.step``) with nothing else running — target ≤ 1.15. Once with the Diagram tab in
   front, once with the Heatmaps tab showing live frames (a copy of every parameter and gradient
   at most every 100 ms, pooled and drawn). The rounds are interleaved (engine, window, engine,
   window...) and the medians compared. Also printed: the document's own loop run headless
   (``doc.train`` on this thread: the NaN/Inf checks per step) against the same floor.
b. Event-loop latency while the run goes on: a 10 ms QTimer records how late each timeout
   fires; p50, p99 and the worst, target p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SIZES = (1024, 4096, 4096, 10)
BATCH = 256


def build_document():
    from app.document import Document
    from app.pluginhost import PluginHost
    host = PluginHost(plugin_dirs=[ROOT / "plugins"], default_dirs=False, entry_points=False)
    doc = Document(host=host, memory_limit=4 << 30)
    doc.add_layer("Dense", {"units": SIZES[1], "activation": "relu"})
    doc.add_layer("Dense", {"units": SIZES[2], "activation": "relu"})
    doc.add_layer("Dense", {"units": SIZES[3]})
    doc.set_input(shape=(BATCH, SIZES[0]), distribution="normal", seed=1)
    doc.set_training(loss="softmax_ce", optimizer="sgd",
                     optimizer_settings={"learning_rate": 0.01},
                     target={"distribution": "integers", "low": 0.0, "high": 10.0, "seed": 2})
    doc.set_snapshot_every(0)
    doc.set_global_init("xavier", {})
    doc.initialize()
    doc.forward()
    return doc


def build_floor():
    """The same network and loop written directly on the engine."""
    from app.engine import autograd, gluon, init, nd
    from app.engine.gluon import nn
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(SIZES[1], activation="relu"), nn.Dense(SIZES[2], activation="relu"),
                nn.Dense(SIZES[3]))
    net.initialize(init.Xavier())
    x = nd.random.normal(shape=(BATCH, SIZES[0]))
    y = nd.array(np.floor(np.random.default_rng(2).uniform(0, 10, BATCH)))
    net(x)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01})

    def run(n):
        for _ in range(n):
            with autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            trainer.step(BATCH)
    return run


class Probe:
    """A 10 ms QTimer recording how late each timeout fires (ms)."""

    def __init__(self, interval_ms=10):
        from PySide6.QtCore import Qt, QTimer
        self.interval = interval_ms
        self.late: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._fire)
        self._last = None

    def start(self):
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self):
        self.timer.stop()

    def _fire(self):
        now = time.perf_counter()
        self.late.append(max(0.0, (now - self._last) * 1000 - self.interval))
        self._last = now


def window_run(window, app, n, probe=None):
    """Seconds from Train to the run's result handled on the GUI thread."""
    from PySide6.QtCore import QEventLoop
    done = []
    loop = QEventLoop()

    def on_finished(result):
        done.append(result)
        loop.quit()
    window.runner.finished.connect(on_finished)
    t0 = time.perf_counter()
    if probe is not None:
        probe.start()
    if not window.runner.start(n):
        raise RuntimeError("the window refused to train: " + window.wb.doc.training_problem())
    if not done:
        loop.exec()                     # the window's normal event loop until the result
    t = time.perf_counter() - t0
    if probe is not None:
        probe.stop()
    window.runner.finished.disconnect(on_finished)
    result = done[0]
    if result is None or result.steps != n:
        raise RuntimeError(f"the run did not complete: {result and result.message}")
    return t


def fmt(t):
    return f"{t * 1000:9.1f} ms" if t < 10 else f"{t:9.2f} s "


def row(label, ours, floor, target):
    ratio = ours / floor
    mark = "ok" if ratio <= target else "MISSED"
    print(f"{label:<52} {fmt(ours)}  {fmt(floor)}  {ratio:6.3f}  ≤ {target:<4} {mark}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n, rounds = (4, 2) if args.quick else (20, 3)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.ui.main_window import MainWindow
    from app.ui.workbench import Workbench

    app = QApplication.instance() or QApplication([])
    print(f"numpy {np.__version__}, {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"{n} steps per run, {rounds} interleaved rounds")
    floor_run = build_floor()
    doc = build_document()
    tmp = tempfile.mkdtemp(prefix="paramlab-bench-")
    settings = QSettings(os.path.join(tmp, "settings.ini"), QSettings.Format.IniFormat)
    wb = Workbench(host=doc.host, doc=doc)
    window = MainWindow(wb, settings=settings, data_dir=Path(tmp), persist=False)
    window.resize(1400, 900)
    window.show()
    app.processEvents()

    floor_run(1)                                          # warm up both
    window_run(window, app, 1)

    def measure(setup):
        setup()
        app.processEvents()
        floors, ours, loops = [], [], []
        frames.clear()
        for _ in range(rounds):
            t0 = time.perf_counter()
            floor_run(n)
            floors.append(time.perf_counter() - t0)
            ours.append(window_run(window, app, n))
            loops.append(window.runner.last_result.seconds)
            frames.append(window.runner.frames_made)
        return statistics.median(ours), statistics.median(floors), statistics.median(loops)

    frames = []
    print(f"{'figure':<52} {'ours':>12}  {'floor':>12}  {'ratio':>6}  target")
    ours, fl, loop = measure(lambda: window.center_tabs.setCurrentIndex(0))
    row(f"a. {n} steps from the window (Diagram in front)", ours, fl, 1.15)
    row("   of which the steps on the worker (info)", loop, fl, 1.15)
    print(f"   fixed cost of a run (undo capture, timeline snapshot, publish): "
          f"{(ours - loop) * 1000:.0f} ms")
    heat_index = next(i for i in range(window.center_tabs.count())
                      if window.center_tabs.tabText(i) == "Heatmaps")
    ours, fl, loop = measure(lambda: window.center_tabs.setCurrentIndex(heat_index))
    row(f"a. {n} steps from the window (live heatmaps)", ours, fl, 1.15)
    row("   of which the steps on the worker (info)", loop, fl, 1.15)
    print(f"   live frames per run: {frames} (a frame is made at most every cost / 5 %)")
    if not args.quick:
        long_n = 3 * n                      # long enough for live frames at this size
        t0 = time.perf_counter()
        floor_run(long_n)
        fl = time.perf_counter() - t0
        ours = window_run(window, app, long_n)
        row(f"a. {long_n} steps from the window (live heatmaps, one run)", ours, fl, 1.15)
        print(f"   live frames in that run: {window.runner.frames_made}")

    floors, docs = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        floor_run(n)
        floors.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        doc.train(n, publish=False)
        docs.append(time.perf_counter() - t0)
    row(f"   {n} steps by doc.train on this thread (info)", statistics.median(docs),
        statistics.median(floors), 1.15)

    print()
    print(f"{'event-loop latency during a run (10 ms timer)':<52} {'p50':>8} {'p99':>8} "
          f"{'worst':>8}  target")
    for label, index in (("Diagram in front", 0), ("live heatmaps", heat_index)):
        window.center_tabs.setCurrentIndex(index)
        app.processEvents()
        probe = Probe()
        window_run(window, app, n, probe)
        late = sorted(probe.late)
        p50 = late[len(late) // 2]
        p99 = late[min(len(late) - 1, int(round(0.99 * (len(late) - 1))))]
        mark = "ok" if p99 <= 50 else "MISSED"
        print(f"b. {label:<49} {p50:6.1f}ms {p99:6.1f}ms {late[-1]:6.1f}ms  p99 ≤ 50 ms "
              f"{mark}  ({len(late)} timeouts)")
    window.wb.undo_stack.clear()
    window.wb.undo_stack.setClean()
    window.close()


if __name__ == "__main__":
    main()
