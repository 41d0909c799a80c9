"""Parameter-panel benchmarks: our figure next to its floor, measured in one run.

    python tests/bench/bench_panels.py            # everything
    python tests/bench/bench_panels.py --quick    # fewer repetitions, skips (c)

Printed as ``ours  floor  ratio  target``. Both sides run offscreen, interleaved (ours, floor,
ours, floor, ...) and the medians are compared. Nothing here is a test: CI never fails on a time.

a. Updating and drawing a 4096×4096 float32 heatmap through the heatmap panel's update path
   (max-|value| pooling to the screen, levels, non-finite check, ``setImage`` with fixed levels,
   colour bar, synchronous repaint of the view) against a bare pyqtgraph
   ``ImageItem.setImage(a, autoLevels=False, levels=...)`` of the same array in a plot of the same
   size with a colour bar, also repainted synchronously — target ≤ 1.2. The array is a fresh
   writable one each time, so no cache helps us. Also: a whole row (A | B | B − A of a
   4096×4096 parameter, caches cleared) against three bare setImage calls plus the subtraction.
b. Switching the A/B pair of a 20-layer model (20 Dense 64×64 layers: 40 rows, 4 heatmaps
   each) — ms per switch including the repaint of the panel, caches warm (what a user clicking
   through the timeline sees) and cold — target ≤ 100 ms. The panel fills the rows on screen
   (and half a screen around them) and the others as they are scrolled to; the time to fill
   all 40 rows is printed as well.
c. A 16M-parameter model (one 4096×4096 Dense, tanh) recording 10 snapshots under a 512 MiB budget:
   ``history.nbytes() <= budget`` after every record, and peak traced memory (tracemalloc) of
   the whole run against budget + the model's own values and gradients.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pyqtgraph as pg  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.document import Document  # noqa: E402
from app.ui import heatmap_panel as hp  # noqa: E402
from app.ui.heatmap_panel import HeatmapPanel  # noqa: E402
from app.ui.workbench import Workbench  # noqa: E402

MIB = 1 << 20


def line(name, ours, floor, target, unit="ms"):
    ratio = ours / floor if floor else float("nan")
    ok = "ok" if ratio <= target else "OVER"
    print(f"  {name:<46} {ours:9.2f} {unit}  {floor:9.2f} {unit}  {ratio:6.2f}×  "
          f"≤ {target:g}  {ok}")


def interleaved(ours, floor, reps):
    a, b = [], []
    ours()
    floor()
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        ours()
        a.append(time.perf_counter() - t0)
        gc.collect()
        t0 = time.perf_counter()
        floor()
        b.append(time.perf_counter() - t0)
    return statistics.median(a) * 1e3, statistics.median(b) * 1e3


def _doc_with(layers, input_shape, host=None):
    doc = Document(host=host)
    doc.set_input(shape=input_shape, distribution="normal")
    for units, in_units, act in layers:
        doc.add_layer("Dense", {"units": units, "in_units": in_units, "activation": act},
                      confirm_large=True)
    return doc


# --------------------------------------------------------------------------- (a)
def bench_heatmap(app, reps):
    print("a. one 4096×4096 float32 heatmap: update + synchronous repaint")
    rng = np.random.default_rng(0)
    base = rng.standard_normal((4096, 4096)).astype(np.float32)

    doc = _doc_with([(4, 5, "none")], (3, 5))
    doc.initialize()
    doc.forward()
    panel = HeatmapPanel(Workbench(None, doc))
    panel.set_fade_duration(0)
    panel.resize(1000, 700)
    panel.show()
    app.processEvents()
    row = panel.row("sequential0_dense0_weight")
    cell = row.cell("B")
    caps = hp.display_caps(base.shape, False, panel.devicePixelRatioF())

    bare = pg.GraphicsLayoutWidget()
    bare.resize(row.glw.size())
    plot = bare.addPlot()
    plot.setFixedWidth(hp.CELL_W - 6)
    plot.setFixedHeight(hp.PLOT_H_2D)
    img = pg.ImageItem(axisOrder="row-major")
    plot.addItem(img)
    plot.addColorBar(img, colorMap=hp.COLOR_MAP, values=(-5, 5), interactive=False)
    plot.invertY(True)
    bare.show()
    app.processEvents()

    arrays = [base.copy() for _ in range(2)]    # writable: no cache on our side
    state = {"i": 0}

    def ours():
        a = arrays[state["i"] % 2]
        state["i"] += 1
        prep = hp.prepare_array(a, caps)
        cell.show_prepared(prep, hp._levels(prep.maxabs))
        row.glw.viewport().repaint()

    m = float(np.abs(base).max())

    def floor():
        img.setImage(arrays[state["i"] % 2], autoLevels=False, levels=(-m, m))
        bare.viewport().repaint()

    o, f = interleaved(ours, floor, reps)
    line("update + repaint, one heatmap", o, f, 1.2)
    fy, fx = cell.prepared.factors
    print(f"     (drawn pooled {fy}×{fx} to {cell.prepared.pooled.shape[0]}×"
          f"{cell.prepared.pooled.shape[1]}, one value per screen pixel)")

    # a whole row: A | B | B − A, every cache cleared
    b2 = base + np.float32(0.01) * rng.standard_normal(base.shape).astype(np.float32)
    a_ro, b_ro = base.copy(), b2
    a_ro.flags.writeable = False
    b_ro.flags.writeable = False
    imgs = []
    bare3 = pg.GraphicsLayoutWidget()
    bare3.resize(row.glw.size())
    for _ in range(3):
        p = bare3.addPlot()
        im = pg.ImageItem(axisOrder="row-major")
        p.addItem(im)
        p.addColorBar(im, colorMap=hp.COLOR_MAP, values=(-5, 5), interactive=False)
        imgs.append(im)
    bare3.show()
    app.processEvents()

    def ours_row():
        hp._cache.clear()
        pa, pb = hp.prepare_array(a_ro, caps), hp.prepare_array(b_ro, caps)
        pd = hp.prepare_diff(a_ro, b_ro, caps)
        lv = hp._levels(pa.maxabs, pb.maxabs, pd.maxabs)
        for key, prep in (("A", pa), ("B", pb), ("D", pd)):
            row.cell(key).show_prepared(prep, lv)
        row.glw.viewport().repaint()

    def floor_row():
        d = b_ro - a_ro
        for im, arr in zip(imgs, (a_ro, b_ro, d)):
            im.setImage(arr, autoLevels=False, levels=(-m, m))
        bare3.viewport().repaint()

    o, f = interleaved(ours_row, floor_row, max(3, reps // 2))
    line("A | B | B − A row of 4096×4096, cold caches", o, f, 1.2)
    panel.close()
    bare.close()
    bare3.close()


# --------------------------------------------------------------------------- (b)
def bench_switch(app, reps):
    print("b. switching the A/B pair, 20 Dense 64×64 layers (40 parameters)")
    doc = _doc_with([(64, 64, "tanh")] * 20, (8, 64))
    doc.initialize()
    doc.forward()
    for _ in range(4):
        doc.backward()
        doc.step()
    snaps = doc.history.snapshots
    pairs = [(snaps[i], snaps[j]) for i, j in ((1, 2), (2, 3), (3, 4), (4, 5), (2, 9),
                                               (5, 6), (6, 7), (7, 8), (8, 9), (1, 9))]
    t0 = time.perf_counter()
    panel = HeatmapPanel(Workbench(None, doc))
    panel.set_fade_duration(0)
    panel.resize(1400, 900)
    panel.show()
    app.processEvents()
    first = (time.perf_counter() - t0) * 1e3
    # the pyqtgraph items of rows out of view are created while idle, one heatmap per tick
    t0 = time.perf_counter()
    while panel._prebuild_timer.isActive():
        app.processEvents()
    idle = (time.perf_counter() - t0) * 1e3
    n_cells = sum(len(r.cells) for r in panel.rows())
    print(f"  {'first show (rows on screen drawn)':<46} {first:9.2f} ms")
    print(f"  {'idle pre-build of the other heatmaps':<46} {idle:9.2f} ms  "
          f"({n_cells} heatmaps in all, ~{idle / max(1, n_cells):.0f} ms per idle tick)")
    state = {"i": 0}

    def switch(clear):
        a, b = pairs[state["i"] % len(pairs)]
        state["i"] += 1
        if clear:
            hp._cache.clear()
        panel.set_pair(a, b)
        panel.repaint()
        app.processEvents()

    for _ in range(len(pairs)):
        switch(False)
    warm, cold = interleaved(lambda: switch(False), lambda: switch(True), reps * 2)
    print(f"  {'pair switch incl. repaint, caches warm':<46} {warm:9.2f} ms  "
          f"{'':>9}     target ≤ 100 ms  {'ok' if warm <= 100 else 'OVER'}")
    print(f"  {'pair switch incl. repaint, caches cleared':<46} {cold:9.2f} ms  "
          f"{'':>9}     target ≤ 100 ms  {'ok' if cold <= 100 else 'OVER'}")

    def switch_all():
        a, b = pairs[state["i"] % len(pairs)]
        state["i"] += 1
        panel.set_pair(a, b)
        panel.flush()                   # every row, also those scrolled out of view
        panel.repaint()
        app.processEvents()

    every, _ = interleaved(switch_all, lambda: None, reps)
    print(f"  {'... filling all 40 rows (as an export does)':<46} {every:9.2f} ms  "
          f"{'':>9}     (rows out of view are normally filled when scrolled to)")
    panel.close()


# --------------------------------------------------------------------------- (c)
def bench_memory():
    print("c. 16M-parameter model (Dense 4096×4096, tanh), 10 snapshots, budget 512 MiB")
    budget = 512 * MIB
    tracemalloc.start()
    doc = Document(snapshot_budget=budget)
    doc.set_input(shape=(2, 4096), distribution="normal")
    doc.add_layer("Dense", {"units": 4096, "in_units": 4096, "activation": "tanh"},
                  confirm_large=True)
    base_current, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    within = []
    held = []
    ops = [doc.initialize, doc.forward] + [op for _ in range(4)
                                           for op in (doc.backward, doc.step)]
    for op in ops:
        op()
        within.append(doc.history.nbytes() <= budget)
        held.append(doc.history.nbytes())
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    model = sum(p.data().asnumpy().nbytes * 2 for p in doc.params().values())
    n = len(doc.history.snapshots) + doc.history.dropped
    print(f"  {n} snapshots recorded, {doc.history.dropped} dropped, "
          f"{len(doc.history.snapshots)} kept; nbytes ≤ budget after every record: "
          f"{all(within)}")
    print("  history held (MiB) after each record: "
          + ", ".join(f"{h / MIB:.0f}" for h in held))
    print(f"  {'history peak / budget':<46} {max(held) / MIB:9.1f} MiB {budget / MIB:9.1f} MiB"
          f"  {max(held) / budget:6.2f}×  ≤ 1  {'ok' if max(held) <= budget else 'OVER'}")
    floor = budget + model
    print(f"  {'traced peak / (budget + model values+grads)':<46} "
          f"{(peak - base_current) / MIB:9.1f} MiB {floor / MIB:9.1f} MiB  "
          f"{(peak - base_current) / floor:6.2f}×  (engine temporaries included)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    reps = 5 if args.quick else 15
    app = QApplication.instance() or QApplication([])
    print(f"{'':<49} {'ours':>9}     {'floor':>9}     ratio")
    bench_heatmap(app, reps)
    bench_switch(app, reps)
    if not args.quick:
        bench_memory()


if __name__ == "__main__":
    main()
